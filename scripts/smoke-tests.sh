#!/bin/bash
# smoke-tests.sh BASE_URL — the story's four smoke checks against a running service.
#
# API_TOKEN is the bearer token for the assessment call. Every check demands a 2xx answer; the
# assessment must come back 201 with an id that is a UUID (an error body's missing id, which jq
# prints as "null", fails). The token is never printed. Exits 0 only when all four pass.

set -euo pipefail

BASE_URL=${1:?usage: smoke-tests.sh BASE_URL (API_TOKEN in the environment)}
TOKEN="${API_TOKEN:-}"
BASE_URL=${BASE_URL%/}
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
BODY_FILE=$(mktemp)
trap 'rm -f "$BODY_FILE"' EXIT

fail() {
  echo "✗ $1"
  exit 1
}

# get PATH: the HTTP status of a GET, the body left in $BODY_FILE ("000" when nothing answered).
get() {
  curl -sS -o "$BODY_FILE" -w '%{http_code}' --max-time 10 "${BASE_URL}$1" || true
}

is_2xx() {
  [[ $1 =~ ^2[0-9][0-9]$ ]]
}

echo "Running smoke tests against ${BASE_URL}"

# Test 1: Health endpoint
echo "Test 1: Health check..."
status=$(get /health)
is_2xx "$status" || fail "Health check failed: HTTP ${status}"
echo "✓ Health check passed"

# Test 2: Ready endpoint
echo "Test 2: Readiness check..."
status=$(get /ready)
is_2xx "$status" || fail "Readiness check failed: HTTP ${status} $(head -c 300 "$BODY_FILE")"
echo "✓ Readiness check passed"

# Test 3: Metrics endpoint
echo "Test 3: Metrics endpoint..."
status=$(get /metrics)
is_2xx "$status" || fail "Metrics endpoint failed: HTTP ${status}"
grep -q "credit_assessments_total" "$BODY_FILE" || fail "Metrics endpoint has no credit_assessments_total"
echo "✓ Metrics endpoint passed"

# Test 4: Assessment API
echo "Test 4: Assessment API..."
[[ -n $TOKEN ]] || fail "Assessment API not tried: API_TOKEN is empty"
status=$(curl -sS -o "$BODY_FILE" -w '%{http_code}' --max-time 10 -X POST "${BASE_URL}/api/v1/assessment" \
  -H "Authorization: Bearer ${TOKEN}" \
  -H "Content-Type: application/json" \
  -d '{
    "clientId": "123e4567-e89b-12d3-a456-426614174000",
    "loanAmount": 50000,
    "loanTerm": 12
  }' || true)
if [[ $status != 201 ]]; then
  detail=$(jq -r '.detail // .title // empty' "$BODY_FILE" 2>/dev/null || true)
  fail "Assessment API failed: HTTP ${status}${detail:+ ($detail)}"
fi
ASSESSMENT_ID=$(jq -r '.id // empty' "$BODY_FILE" 2>/dev/null || true)
[[ $ASSESSMENT_ID =~ $UUID_RE ]] || fail "Assessment API failed: the id '${ASSESSMENT_ID}' is not a UUID"
echo "✓ Assessment API passed (ID: ${ASSESSMENT_ID})"

echo ""
echo "All smoke tests passed!"
