"""The trained scorecard, the credit policy and client profiles, as versioned files.

Serving reads them with the standard library only: :func:`default_model`,
:func:`default_policy` (each loaded once per process) and :func:`load_applicants`. A file that
cannot be used raises :class:`ModelArtifactError` naming the file and the problem. Training
(:mod:`credit_assessment.model.train`, needing the ``[train]`` extra) writes them.
"""

from credit_assessment.model.applicants import Applicant, load_applicants
from credit_assessment.model.artifact import ModelArtifactError, default_model, load_model
from credit_assessment.model.policy import default_policy, load_policy

__all__ = [
    "Applicant",
    "ModelArtifactError",
    "default_model",
    "default_policy",
    "load_applicants",
    "load_model",
    "load_policy",
]
