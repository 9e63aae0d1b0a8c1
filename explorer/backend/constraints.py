"""The constraint side of the backend interface: compiling a ConstraintSpec (choices,
regex, JSON schema, Lark grammar) for the backend's own tokenizer. Importable without torch.

Only a backend that holds the model's tokenizer and hands out raw logits rows can serve
it (the local engine); `supports_constraints(backend)` is the one test the layers above use.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from explorer.sampling.constraint import Constraint, ConstraintSpec


@runtime_checkable
class ConstraintBackend(Protocol):
    def constraint(self, spec: ConstraintSpec) -> Constraint:
        """The spec compiled for this model's tokenizer and logits width. Raises
        ConstraintError (one sentence) for an invalid spec."""


def supports_constraints(backend: object) -> bool:
    from explorer.backend.sampling import supports_sampling

    return supports_sampling(backend) and isinstance(backend, ConstraintBackend)
