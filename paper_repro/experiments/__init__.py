"""Pure metric functions behind the papers' tables and figures (numpy/pandas; no solver calls).

* :mod:`~paper_repro.experiments.carlini_tables` — Carlini et al. (2018) Tables 1–2, the
  nonlinearity count and its significance test.
* :mod:`~paper_repro.experiments.pahlavan_metrics` — Pahlavan et al.: cosine similarity of the
  FGSM and minimal perturbations, δ-robustness in pixels (Figs. 1, 3, 5–7).
* :mod:`~paper_repro.experiments.dathathri_metrics` — Dathathri et al.: adversarial frequency and
  severity (Eq. 3), Table 3 and the φ-vs-δ curve (Fig. 5).
* :mod:`~paper_repro.experiments.wong_kolter_metrics` — Wong & Kolter (2018): Table 1 error rows
  and the sorted certified-radius curve (Fig. 5).

Each module also holds the paper's printed numbers as constants, to print beside ours.
"""
