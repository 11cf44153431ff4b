"""The claims table: one row per claim a paper makes, its value beside ours, and a verdict.

Each paper's module builds its rows (``carlini_claims``, ``pahlavan_claims``, …) from the same
frames its notebook tabulates; the notebook saves them to ``results/tables/{paper}_claims.csv``
and the ``claims`` rule concatenates the four files into ``results/claims.csv``.

Verdicts (:class:`Verdict`):

* ``reproduced`` — a quantitative claim whose paper value lies in our 95 % interval, or a
  qualitative one (a direction, "no significant difference", "none negative") that our data
  support at that level;
* ``differs`` — our interval excludes the paper's value, or our data contradict the direction;
* ``not comparable`` — the quantity depends on something we do not share (their solver's speed,
  a network family we do not train) or we have no data for it; the reason says which.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import pandas as pd

from paper_repro.errors import PaperReproError
from paper_repro.experiments.stats import MIN_UNITS, Estimate


class Verdict(enum.StrEnum):
    """How our result stands against a paper's claim (see the module docstring)."""

    REPRODUCED = "reproduced"
    DIFFERS = "differs"
    NOT_COMPARABLE = "not comparable"


@dataclass(frozen=True)
class Claim:
    """One row of ``results/claims.csv``.

    Attributes:
        paper: ``carlini``, ``pahlavan``, ``dathathri`` or ``wong_kolter``.
        claim: a short identifier, unique within the paper (e.g. ``table1_N_linf_all_minimal``).
        statement: the claim in words, with the paper's location (table, section).
        paper_value: the paper's number (NaN for a purely qualitative claim).
        ours: our point estimate (NaN where we have none).
        ci_low, ci_high: our 95 % interval (NaN where none).
        n: observations behind ``ours``.
        method: how the interval was made (:class:`~paper_repro.experiments.stats.Estimate`).
        verdict: :class:`Verdict`.
        reason: one line: why that verdict.
    """

    paper: str
    claim: str
    statement: str
    paper_value: float
    ours: float
    ci_low: float
    ci_high: float
    n: int
    method: str
    verdict: Verdict
    reason: str


CLAIM_COLUMNS = tuple(f.name for f in fields(Claim))


def quantitative(
    paper: str, claim: str, statement: str, paper_value: float, est: Estimate, unit: str = ""
) -> Claim:
    """A numeric claim: ``reproduced`` iff ``paper_value`` lies in ``est``'s interval."""
    if est.n == 0 or math.isnan(est.value):
        return _row(paper, claim, statement, paper_value, est, Verdict.NOT_COMPARABLE, "no data")
    if math.isnan(est.low) or math.isnan(est.high):
        reason = f"no interval (n = {est.n})"
        return _row(paper, claim, statement, paper_value, est, Verdict.NOT_COMPARABLE, reason)
    if _too_few(est):
        return _row(paper, claim, statement, paper_value, est, Verdict.NOT_COMPARABLE, _few(est))
    inside = est.contains(paper_value)
    where = "inside" if inside else ("below" if paper_value < est.low else "above")
    reason = (
        f"paper {paper_value:.4g}{unit} is {where} our 95 % interval "
        f"[{est.low:.4g}, {est.high:.4g}]{unit} (n = {est.n})"
    )
    verdict = Verdict.REPRODUCED if inside else Verdict.DIFFERS
    return _row(paper, claim, statement, paper_value, est, verdict, reason)


def qualitative(
    paper: str,
    claim: str,
    statement: str,
    est: Estimate,
    holds: bool,
    reason: str,
    paper_value: float = math.nan,
) -> Claim:
    """A claim about a direction or a test outcome; ``holds`` says whether our data support it."""
    if est.n == 0:
        return _row(paper, claim, statement, paper_value, est, Verdict.NOT_COMPARABLE, "no data")
    if _too_few(est):
        return _row(paper, claim, statement, paper_value, est, Verdict.NOT_COMPARABLE, _few(est))
    verdict = Verdict.REPRODUCED if holds else Verdict.DIFFERS
    return _row(paper, claim, statement, paper_value, est, verdict, reason)


def _too_few(est: Estimate) -> bool:
    return est.method.startswith("bootstrap") and est.n < MIN_UNITS


def _few(est: Estimate) -> str:
    return f"only {est.n} independent image(s); an interval needs at least {MIN_UNITS}"


def not_comparable(
    paper: str, claim: str, statement: str, paper_value: float, est: Estimate | None, reason: str
) -> Claim:
    """A claim we report beside ours but cannot judge (``reason`` says why)."""
    est = est or Estimate(math.nan, math.nan, math.nan, 0, "none")
    return _row(paper, claim, statement, paper_value, est, Verdict.NOT_COMPARABLE, reason)


def _row(
    paper: str,
    claim: str,
    statement: str,
    paper_value: float,
    est: Estimate,
    verdict: Verdict,
    reason: str,
) -> Claim:
    return Claim(
        paper,
        claim,
        statement,
        float(paper_value),
        est.value,
        est.low,
        est.high,
        est.n,
        est.method,
        verdict,
        reason,
    )


def claims_frame(claims: Iterable[Claim]) -> pd.DataFrame:
    """The rows as a frame with :data:`CLAIM_COLUMNS`; claim ids must be unique per paper."""
    df = pd.DataFrame([asdict(c) for c in claims], columns=list(CLAIM_COLUMNS))
    df["verdict"] = df["verdict"].astype(str)
    if df.duplicated(["paper", "claim"]).any():
        dups = df.loc[df.duplicated(["paper", "claim"]), "claim"].tolist()
        raise PaperReproError(f"duplicate claim ids: {dups}")
    return df


def combine_claims(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Concatenate the per-paper claim files into the one claims table (a missing or malformed
    file is a clear error)."""
    frames = []
    for path in map(Path, paths):
        if not path.is_file():
            raise PaperReproError(f"claims file not found: {path}")
        df = pd.read_csv(path)
        missing = [c for c in CLAIM_COLUMNS if c not in df.columns]
        if missing:
            raise PaperReproError(f"{path} lacks claim columns {missing}")
        bad = set(df["verdict"]) - {v.value for v in Verdict}
        if bad:
            raise PaperReproError(f"{path} has unknown verdicts {sorted(bad)}")
        frames.append(df[list(CLAIM_COLUMNS)])
    if not frames:
        raise PaperReproError("no claims files given")
    out = pd.concat(frames, ignore_index=True)
    if out.duplicated(["paper", "claim"]).any():
        raise PaperReproError("the same claim appears in two claims files")
    return out
