"""Progress of long fits: a record per layer, for a callback and a status line.

The stacking loop (:func:`destructors.deep.stack_layers`) reports every
layer it fits to a :class:`FitProgress`, in both phases of a fit: the
*search* for the depth and, after early stopping, the *refit* of the chosen
depth on all rows. ``FitProgress`` turns each report into a
:class:`LayerProgress` record, hands it to the user's callback, and with
``verbose`` prints it as one status line.
"""

import math
import time
from dataclasses import dataclass

# The phases of a fit, in order.
PHASES = ("search", "refit")


@dataclass(frozen=True)
class LayerProgress:
    """Where a fit stands after one layer.

    Attributes
    ----------
    phase : {"search", "refit"}
        ``"search"`` while the depth is chosen (every fit has it);
        ``"refit"`` while the chosen depth is refitted on all rows after
        early stopping (``refit=True``).
    layer : int
        Position of the layer just fitted in its phase, from 1.
    max_layers : int
        The most layers the phase fits: ``max_layers`` in the search, the
        chosen depth in the refit.
    train_score, validation_score : float or None
        Mean log-likelihood of the fitting and held-out rows after the
        layer, as in the model's ``train_score_``/``validation_score_``
        (``None`` where not measured: in the refit, without a held-out
        split, or not yet for a streamed source, which scores a layer in
        the pass that fits the next).
    tc_reduction : float or None
        Total correlation the layer removed (``None`` in the refit).
    best_layer : int or None
        Depth the stopping rule would keep if the search stopped now.
    best_score : float or None
        Held-out score at that depth (with early stopping).
    patience_left : int or None
        Layers without improvement the rule still allows.
    last : bool
        Whether this layer ends its phase, as far as known when it is
        reported (a streamed search learns that it has stopped only while
        fitting the next layer, which it then abandons: there no search
        record says True).
    elapsed : float
        Seconds since the fit began (both phases).
    remaining : float or None
        Estimated seconds to the end of the fit, at the mean time per layer
        so far. In the search it is the soonest end (no further layer
        improves: ``patience_left`` more layers, then the refit of
        ``best_layer`` layers when it follows), so a lower bound.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import RBIG
    >>> X = np.random.default_rng(0).gamma(2.0, size=(300, 2))
    >>> records = []
    >>> model = RBIG(max_layers=5, random_state=0).fit(X, callback=records.append)
    >>> [(r.phase, r.layer) for r in records][:2]
    [('search', 1), ('search', 2)]
    >>> records[-1].phase
    'refit'
    """

    phase: str
    layer: int
    max_layers: int
    train_score: float | None
    validation_score: float | None
    tc_reduction: float | None
    best_layer: int | None
    best_score: float | None
    patience_left: int | None
    last: bool
    elapsed: float
    remaining: float | None

    def describe(self):
        """One readable status line.

        Returns
        -------
        line : str
            E.g. ``"layer 3/500: train -2.0100, validation -2.1000, ... ;
            best 3, patience 20/20, 1.2 s elapsed, at least 3.4 s left"``.

        Examples
        --------
        >>> from destructors.progress import LayerProgress
        >>> LayerProgress("refit", 2, 5, None, None, None, None, None, None,
        ...               False, 3.0, 4.5).describe()
        'refit layer 2/5: 3.0 s elapsed, about 4.5 s left'
        """
        head = "layer" if self.phase == "search" else f"{self.phase} layer"
        parts = [f"{name} {value:.4f}" for name, value in (
            ("train", self.train_score), ("validation", self.validation_score),
        ) if value is not None]
        if self.tc_reduction is not None:
            parts.append(f"tc reduction {self.tc_reduction:.5f}")
        status = []
        if self.phase == "search" and self.best_layer is not None:
            best = f"best {self.best_layer}"
            if self.best_score is not None:
                best += f" ({self.best_score:.4f})"
            status.append(best)
        if self.patience_left is not None:
            status.append(f"patience left {self.patience_left}")
        status.append(f"{_seconds(self.elapsed)} elapsed")
        if self.remaining is not None:
            bound = "at least" if self.phase == "search" else "about"
            status.append(f"{bound} {_seconds(self.remaining)} left")
        line = f"{head} {self.layer}/{self.max_layers}: "
        return line + "; ".join(filter(None, [", ".join(parts), ", ".join(status)]))


def _seconds(t):
    return f"{t:.1f} s" if t < 600 else f"{t / 60:.1f} min"


class FitProgress:
    """Collects the stacking loop's reports into :class:`LayerProgress` records.

    Parameters
    ----------
    callback : callable or None, default=None
        Called as ``callback(record)`` with each :class:`LayerProgress`,
        in order, in both phases.
    verbose : int, default=0
        Print each record's status line (and where the refit starts) when
        positive; nothing at 0.
    refit : bool, default=False
        Whether a refit phase follows the search (it enters the estimate of
        the time that remains).

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import RandomRotation
    >>> from destructors.deep import ArraySource, StoppingRule, stack_layers
    >>> from destructors.progress import FitProgress
    >>> records = []
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> _ = stack_layers(lambda i: RandomRotation(random_state=i), ArraySource(X),
    ...                  StoppingRule(False, None, 1), 3, progress=FitProgress(records.append))
    >>> [(r.phase, r.layer, r.max_layers, r.last) for r in records]
    [('search', 1, 3, False), ('search', 2, 3, False), ('search', 3, 3, True)]
    """

    def __init__(self, callback=None, verbose=0, *, refit=False, clock=time.perf_counter):
        self.callback = callback
        self.verbose = verbose
        self.refit = refit
        self._clock = clock
        self._start = clock()
        self._phase, self._phase_start = None, self._start

    def begin(self, phase, max_layers):
        """A phase starts; it fits at most ``max_layers`` layers."""
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}.")
        self._phase, self._phase_start = phase, self._clock()
        if self.verbose and phase == "refit":
            print(f"refit: {max_layers} layers on all rows (the depth the search chose)")

    def report(self, layer, max_layers, record, rule, last):
        """Record the ``layer``-th layer (from 1) of the current phase.

        ``record`` is the source's :class:`~destructors.deep.LayerRecord`
        of it, or None where the source keeps none (a refit); ``rule`` the
        stopping rule, read for the best depth and the patience left.
        """
        now = self._clock()
        per_layer = (now - self._phase_start) / layer
        patience = getattr(rule, "patience_left", None)
        best = getattr(rule, "n_keep", None) or None  # (0: no layer kept yet)
        best_score = getattr(rule, "best", None)
        if best is None or best_score is None or not math.isfinite(best_score):
            best_score = None  # (the total correlation rule keeps no score)
        if self._phase == "search":
            left = max_layers - layer if patience is None else min(patience, max_layers - layer)
            left = 0 if last else left
            if self.refit:
                left += best or 1
        else:
            best = patience = None
            left = max_layers - layer
        progress = LayerProgress(
            phase=self._phase,
            layer=layer,
            max_layers=max_layers,
            train_score=getattr(record, "train_score", None),
            validation_score=getattr(record, "validation_score", None),
            tc_reduction=getattr(record, "tc_reduction", None),
            best_layer=best,
            best_score=best_score,
            patience_left=patience,
            last=last,
            elapsed=now - self._start,
            remaining=left * per_layer,
        )
        if self.callback is not None:
            self.callback(progress)
        if self.verbose:
            print(progress.describe())
        return progress


class TqdmProgress:
    """A callback that draws one tqdm progress bar per phase of a fit.

    Pass an instance as ``fit(X, callback=TqdmProgress())``. The bar counts
    layers up to ``max_layers`` (the search) or the chosen depth (the
    refit), and shows the held-out score, the best depth, the patience left
    and the estimate of the time left from each
    :class:`LayerProgress` (tqdm's own estimate would assume the search
    runs to ``max_layers``). Needs ``tqdm`` (``pip install
    destructors[progress]``).

    Parameters
    ----------
    **tqdm_params : dict
        Passed to ``tqdm.auto.tqdm`` (e.g. ``file``, ``leave``, ``disable``,
        ``bar_format``).

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from destructors import RBIG
    >>> from destructors.progress import TqdmProgress
    >>> out = io.StringIO()
    >>> X = np.random.default_rng(0).gamma(2.0, size=(500, 2))
    >>> model = RBIG(max_layers=50, n_iter_no_change=2, random_state=0)
    >>> _ = model.fit(X, callback=TqdmProgress(file=out))
    >>> "search" in out.getvalue() and "refit" in out.getvalue()
    True
    """

    def __init__(self, **tqdm_params):
        try:
            from tqdm.auto import tqdm
        except ImportError as exc:
            raise ImportError(
                "TqdmProgress needs tqdm: pip install tqdm (or destructors[progress])."
            ) from exc
        self._tqdm = tqdm
        self.tqdm_params = {
            "bar_format": "{desc}: {n_fmt}/{total_fmt} layers |{bar}| {elapsed}{postfix}",
            **tqdm_params,
        }
        self._bar, self._phase = None, None

    def __call__(self, record):
        """Advance the bar of ``record.phase`` to ``record.layer``."""
        if self._bar is None or record.phase != self._phase:
            self.close()
            self._bar = self._tqdm(total=record.max_layers, desc=record.phase,
                                   **self.tqdm_params)
            self._phase = record.phase
        status = {}
        if record.validation_score is not None:
            status["held-out"] = f"{record.validation_score:.4f}"
        if record.best_layer is not None:
            status["best"] = record.best_layer
        if record.patience_left is not None:
            status["patience"] = record.patience_left
        if record.remaining is not None:
            bound = "at least" if record.phase == "search" else "about"
            status["left"] = f"{bound} {_seconds(record.remaining)}"
        self._bar.set_postfix(status, refresh=False)
        self._bar.update(record.layer - self._bar.n)
        if record.last:
            self.close()

    def close(self):
        """Close the current bar (a streamed search without a refit leaves it open)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
