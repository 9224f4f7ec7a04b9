"""Debian's Chromium, headless, as the page tests run it: no GPU, no first-run work, none of the
browser's own background traffic it can be told to skip. Each test adds its profile directory,
its network limits and what to do with the page; ``Browser`` drives one over the DevTools pipe
and reaches nothing but loopback."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")

HEADLESS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class Browser:
    """Chromium over the DevTools pipe: commands on fd 3, answers on fd 4, NUL-separated."""

    def __init__(self, url: str, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The child's fds 3 and 4 are the two ends it uses.
        self.process = subprocess.Popen(
            [
                str(CHROMIUM),
                *HEADLESS,
                "--proxy-server=127.0.0.1:9",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                url,
            ],
            close_fds=False,
            # Chromium's pipe is fds 3 and 4; the child does nothing else before exec.
            preexec_fn=lambda: (os.dup2(to_browser_r, 3), os.dup2(from_browser_w, 4)),  # noqa: PLW1509
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._id = 0
        self.session: str | None = None

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if self.session is not None and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._from_browser, 65536)
                if not chunk:
                    raise AssertionError("chromium closed the pipe")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                return dict(answer.get("result", {}))

    def attach(self, url: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pages = [
                t
                for t in self.call("Target.getTargets")["targetInfos"]
                if t["type"] == "page" and t["url"].startswith(url)
            ]
            if pages:
                attached = self.call(
                    "Target.attachToTarget", targetId=pages[0]["targetId"], flatten=True
                )
                self.session = attached["sessionId"]
                return
            time.sleep(0.2)
        raise AssertionError("the live page never opened")

    def navigate(self, url: str) -> None:
        """Load ``url`` in the attached page (one load: what the page does next is its own)."""
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def wait_for(self, expression: str, expected: Any, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        seen = None
        while time.monotonic() < deadline:
            try:
                seen = self.evaluate(expression)
            except AssertionError as exc:  # the page is still loading
                if "execution context" not in str(exc):
                    raise
                seen = None
            if seen == expected:
                return
            time.sleep(0.2)
        raise AssertionError(f"{expression}: {seen!r}, expected {expected!r}")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._to_browser)
        os.close(self._from_browser)
