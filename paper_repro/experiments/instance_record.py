"""The typed record of one study query: the engine's answer plus what the experiment adds.

A JSONL line (:mod:`paper_repro.exact.witnesses.records`) holds the key (model, norm, image,
target — ``None`` for an untargeted query), the engine's :class:`~paper_repro.query.MinAdvResult`
and, in its ``extra`` field, the engine's own diagnostics merged with the experiment's
:class:`InstanceInfo`. :class:`InstanceRecord` reads such a line back with types, and
:meth:`InstanceRecord.row` gives the flat table row the notebooks use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from paper_repro.errors import PaperReproError
from paper_repro.exact.witnesses import records
from paper_repro.query import MinAdvResult, Status


@dataclass(frozen=True)
class InstanceInfo:
    """What a study job records beside the engine's result (distances in [0, 1] pixel units).

    Attributes:
        label: the image's true class.
        prediction: the network's class for the image.
        correct: ``prediction == label``.
        cw_distance: distance of the Carlini–Wagner start (``inf``: the attack failed).
        cw_adv: the CW example ``[784]`` (float32 values) or ``None``.
        total_seconds: wall time of the engine call.
        fgsm_delta: Pahlavan et al.'s closest iterated-FGSM distance (L∞ queries; ``inf``: not
            found; ``None`` for L1).
        fgsm_adv: that example or ``None``.
        switched_relus: ReLUs whose phase differs between ``x`` and the witness (Carlini et al.
            Sec. 5.3); ``None`` without a witness.
    """

    label: int
    prediction: int
    correct: bool
    cw_distance: float
    cw_adv: list[float] | None
    total_seconds: float
    fgsm_delta: float | None = None
    fgsm_adv: list[float] | None = None
    switched_relus: int | None = None

    def as_extra(self) -> dict[str, Any]:
        """The fields as ``extra`` entries: the ``fgsm_*`` pair only for L∞ queries (those with a
        ``fgsm_delta``), ``switched_relus`` only with a witness."""
        out = asdict(self)
        if self.fgsm_delta is None:
            del out["fgsm_delta"], out["fgsm_adv"]
        if self.switched_relus is None:
            del out["switched_relus"]
        return out

    @classmethod
    def from_extra(cls, extra: dict[str, Any]) -> InstanceInfo:
        """Read the fields back from a record's ``extra``.

        Raises:
            PaperReproError: a required field is missing (not a study record).
        """
        names = [f.name for f in fields(cls)]
        missing = [n for n in names[:6] if n not in extra]
        if missing:
            raise PaperReproError(f"record lacks the study fields {missing}")
        values = {n: extra.get(n) for n in names}
        values["cw_distance"] = float(values["cw_distance"])
        return cls(**values)


@dataclass(frozen=True)
class InstanceRecord:
    """One stored query: its key, the engine's result, the study's info and the provenance."""

    model: str
    norm: str
    image: int
    target: int | None
    result: MinAdvResult
    info: InstanceInfo
    provenance: dict[str, Any]

    @classmethod
    def from_json(cls, rec: dict[str, Any]) -> InstanceRecord:
        """Parse one JSONL record (as :func:`~paper_repro.exact.witnesses.records.load_finished`
        returns it)."""
        key = rec["key"]
        target = key.get("target")
        return cls(
            model=str(key["model"]),
            norm=str(key["norm"]),
            image=int(key["image"]),
            target=None if target is None else int(target),
            result=records.record_to_result(rec),
            info=InstanceInfo.from_extra(rec.get("extra", {})),
            provenance=dict(rec.get("provenance", {})),
        )

    def row(self) -> dict[str, Any]:
        """The flat table row: key, result fields (witness as a list), engine diagnostics and
        study info as columns, and the model hash."""
        r = self.result
        row: dict[str, Any] = {
            "model": self.model,
            "norm": self.norm,
            "image": self.image,
            "target": self.target,
        }
        row.update(records.result_to_dict(r))  # the witness as a list of floats
        row.pop("extra")
        row.update(r.extra)
        row.update(self.info.as_extra())
        row["model_sha256"] = self.provenance.get("model_sha256")
        return row

    @property
    def targeted(self) -> bool:
        return self.target is not None

    @property
    def solved(self) -> bool:
        """The bracket closed (``optimal``) or the search proved ``δ*`` beyond its cap."""
        return self.result.status in (Status.OPTIMAL, Status.BEYOND)
