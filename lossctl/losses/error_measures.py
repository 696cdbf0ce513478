"""Regression losses PyTorch lacks: log-cosh, MAPE, MSLE (Keras), pinball and the Tweedie
deviances (scikit-learn), each defaulting to its home framework."""

from __future__ import annotations

import numpy as np

from ..core import tape as T
from ..errors import InvalidInput
from ..core.registry import Convention, Param
from .framework_common import KERAS_EPSILON, framework_loss, keras_eps, keras_last_axis, sklearn_rows_mean


def _err(t: T.Tape, x: dict) -> T.Var:
    return t.step("error", "error", "x = ŷ − y", x["pred"] - x["target"])


# --- log-cosh ---------------------------------------------------------------------------------

def keras_log_cosh(t, x, params):
    """keras.losses.LogCosh: mean over the last axis of x + softplus(−2x) − log 2 (x = ŷ − y)."""
    e = _err(t, x)
    values = e + T.softplus_(-2.0 * e) - np.log(2.0)
    t.step("log_cosh", "log cosh", "x + softplus(−2x) − log 2", values)
    return keras_last_axis(t, values)


def optax_log_cosh(t, x, params):
    """optax.losses.log_cosh: logaddexp(x, −x) − log 2, per element."""
    e = _err(t, x)
    values = T.logaddexp(e, -e) - np.log(2.0)
    t.step("log_cosh", "log cosh", "logaddexp(x, −x) − log 2", values)
    return values


LOG_COSH = framework_loss(
    name="log-cosh", aliases=("logcosh",), home="keras", kinds=("pred",),
    summary="Logarithm of the hyperbolic cosine of the prediction error.",
    formula="l = log cosh(ŷ − y) = x + softplus(−2x) − log 2, stable for large |x|",
    conventions={
        "keras": Convention("keras", "keras.losses.LogCosh", "mean over the last axis, then ÷ batch size; float32",
                            keras_log_cosh, kinds=("pred",)),
        "optax": Convention("optax", "optax.losses.log_cosh", "per element, not reduced", optax_log_cosh, kinds=("pred",)),
    },
)


# --- MAPE -------------------------------------------------------------------------------------

def keras_mape(t, x, params):
    """keras.losses.MeanAbsolutePercentageError: 100·mean_last |(y − ŷ) / max(|y|, ε)|, ε = 1e-7."""
    y, p = x["target"], x["pred"]
    eps = np.dtype(p.dtype).type(KERAS_EPSILON)
    floor = np.maximum(np.abs(y), eps)
    t.step("floor", "denominator", "max(|y|, ε), ε = 1e-7", floor, before=np.abs(y),
           reason="keras floors |y| at 1e-7", symbol="|y|")
    values = 100.0 * T.absolute((y - p) / floor)
    t.step("ape", "absolute percentage error", "100·|y − ŷ| / max(|y|, ε)", values)
    return keras_last_axis(t, values)


def sklearn_mape(t, x, params):
    """sklearn.metrics.mean_absolute_percentage_error: |ŷ − y| / max(|y|, eps64) — a fraction, not %."""
    y, p = x["target"], x["pred"]
    floor = np.maximum(np.abs(y), np.finfo(np.float64).eps).astype(p.dtype)
    t.step("floor", "denominator", "max(|y|, eps), eps = 2.2e-16", floor, before=np.abs(y),
           reason="scikit-learn floors |y| at float64's eps 2.2e-16", symbol="|y|")
    values = T.absolute(p - y) / floor
    t.step("ape", "absolute percentage error", "|ŷ − y| / max(|y|, eps)  (a fraction)", values)
    return sklearn_rows_mean(t, values)


MAPE = framework_loss(
    name="mape", aliases=("mean-absolute-percentage-error",), home="keras", kinds=("pred",),
    summary="Mean absolute percentage error.",
    formula="l = 100·|y − ŷ| / max(|y|, ε) (Keras, in %); scikit-learn: |y − ŷ| / max(|y|, eps), a fraction",
    conventions={
        "keras": Convention("keras", "keras.losses.MeanAbsolutePercentageError",
                            "in percent; |y| floored at 1e-7; mean over the last axis; float32", keras_mape, kinds=("pred",)),
        "sklearn": Convention("sklearn", "sklearn.metrics.mean_absolute_percentage_error",
                              "a fraction, not %; |y| floored at 2.2e-16; np.average over samples",
                              sklearn_mape, kinds=("pred",), reductions=("mean", "none")),
    },
)


# --- MSLE -------------------------------------------------------------------------------------

def keras_msle(t, x, params):
    """keras.losses.MeanSquaredLogarithmicError: mean_last (log(max(ŷ, ε) + 1) − log(max(y, ε) + 1))²."""
    y, p = x["target"], x["pred"]
    lo, _ = keras_eps(p.dtype)
    pc = T.maximum(p, lo)
    t.step("clip", "floored prediction", "max(ŷ, ε), ε = 1e-7", pc, before=p,
           reason="keras floors ŷ and y at 1e-7 (negatives are clipped, not refused)", symbol="ŷ")
    yc = np.maximum(y, lo)
    values = T.square(T.log(pc + 1.0) - np.log(yc + 1))
    t.step("sle", "squared log error", "(log(ŷ + 1) − log(y + 1))²", values)
    return keras_last_axis(t, values)


def sklearn_msle(t, x, params):
    """sklearn.metrics.mean_squared_log_error: mean((log1p(y) − log1p(ŷ))²); refuses values ≤ −1."""
    y, p = x["target"], x["pred"]
    values = T.square(np.log1p(y) - T.log1p(p))
    t.step("sle", "squared log error", "(log1p(y) − log1p(ŷ))²", values)
    return sklearn_rows_mean(t, values)


def _sklearn_msle_validate(x, params):
    for name in ("target", "pred"):
        bad = x[name] <= -1
        if np.any(bad):
            where = [int(i) for i in np.argwhere(bad)[0]]
            raise InvalidInput(name, f"scikit-learn's mean_squared_log_error refuses values ≤ −1: "
                                     f"{float(x[name][tuple(where)])!r} at index {where}")


MSLE = framework_loss(
    name="msle", aliases=("mean-squared-logarithmic-error",), home="keras", kinds=("pred",),
    summary="Mean squared logarithmic error.",
    formula="l = (log(1 + ŷ) − log(1 + y))²",
    conventions={
        "keras": Convention("keras", "keras.losses.MeanSquaredLogarithmicError",
                            "ŷ and y floored at 1e-7 (negatives silently clipped); mean over the last axis; float32",
                            keras_msle, kinds=("pred",)),
        "sklearn": Convention("sklearn", "sklearn.metrics.mean_squared_log_error",
                              "log1p, no floor; values ≤ −1 refused; np.average over samples",
                              sklearn_msle, kinds=("pred",), validate=_sklearn_msle_validate, reductions=("mean", "none")),
    },
)


# --- pinball ----------------------------------------------------------------------------------

ALPHA_QUANTILE = Param("alpha", "float", 0.5, "The quantile: α·max(y − ŷ, 0) + (1 − α)·max(ŷ − y, 0).")


def sklearn_pinball(t, x, params):
    """sklearn.metrics.mean_pinball_loss: α·d·[d ≥ 0] − (1 − α)·d·[d < 0], d = y − ŷ."""
    a = float(params.get("alpha", 0.5))
    d = x["target"] - x["pred"]
    t.step("diff", "residual", "d = y − ŷ", d)
    sign = (d.value >= 0).astype(d.dtype)
    values = a * sign * d - (1 - a) * (1 - sign) * d
    t.step("pinball", "pinball", f"α·max(d, 0) + (1 − α)·max(−d, 0), α = {a:g}", values)
    return sklearn_rows_mean(t, values)


PINBALL = framework_loss(
    name="pinball", aliases=("quantile",), home="sklearn", kinds=("pred",), params=(ALPHA_QUANTILE,),
    summary="Pinball (quantile) loss.",
    formula="l = α·max(y − ŷ, 0) + (1 − α)·max(ŷ − y, 0); at α = 0.5 it is half the absolute error",
    conventions={
        "sklearn": Convention("sklearn", "sklearn.metrics.mean_pinball_loss", "np.average over samples (÷ Σ sample_weight)",
                              sklearn_pinball, kinds=("pred",), params=("alpha",), reductions=("mean", "none")),
    },
)


# --- Tweedie deviances ------------------------------------------------------------------------

POWER = Param("power", "float", 0.0, "Tweedie power: 0 normal (squared error), 1 Poisson, 2 gamma, other p ≤ 0 or ≥ 1.")


def _tweedie(t, x, power: float):
    y, mu = x["target"], x["pred"]
    p = power
    if p < 0:
        ypos = np.where(y > 0, y, 0.0)
        values = 2 * (ypos ** (2 - p) / ((1 - p) * (2 - p)) - y * T.power(mu, 1 - p) / (1 - p) + T.power(mu, 2 - p) / (2 - p))
    elif p == 0:
        values = T.square(y - mu)
    elif p == 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            ylogy = np.where(y == 0, 0.0, y * np.log(np.where(y == 0, 1.0, y)))
        values = 2 * (ylogy - y * T.log(mu) - y + mu)
    elif p == 2:
        values = 2 * (T.log(mu / y) + y / mu - 1)
    else:
        values = 2 * (y ** (2 - p) / ((1 - p) * (2 - p)) - y * T.power(mu, 1 - p) / (1 - p) + T.power(mu, 2 - p) / (2 - p))
    t.step("deviance", "unit deviance", f"Tweedie unit deviance, power = {p:g}", values)
    return values


def _tweedie_validate(power_of):
    def validate(x, params):
        p = power_of(params)
        y, mu = x["target"], x["pred"]
        if 0 < p < 1:
            raise InvalidInput("power", f"scikit-learn's Tweedie deviance is not defined for 0 < power < 1 (got {p:g})")
        need_y = "non-negative" if 1 <= p < 2 else ("strictly positive" if p >= 2 else None)
        if p != 0 and np.any(mu <= 0):
            raise InvalidInput("pred", f"the Tweedie deviance with power={p:g} needs strictly positive predictions")
        if need_y == "non-negative" and np.any(y < 0):
            raise InvalidInput("target", f"the Tweedie deviance with power={p:g} needs non-negative targets")
        if need_y == "strictly positive" and np.any(y <= 0):
            raise InvalidInput("target", f"the Tweedie deviance with power={p:g} needs strictly positive targets")
        if np.ndim(y) > 1 and np.shape(y)[-1] > 1:
            raise InvalidInput("target", "scikit-learn's Tweedie deviances take one output (multioutput is not supported)")
    return validate


def sklearn_tweedie(t, x, params):
    """sklearn.metrics.mean_tweedie_deviance: 2·(ℓ_saturated − ℓ) of the Tweedie family, np.average."""
    return _tweedie(t, x, float(params.get("power", 0.0)))


def sklearn_poisson_deviance(t, x, params):
    """sklearn.metrics.mean_poisson_deviance: 2·(y·log(y/μ) − y + μ), np.average over samples."""
    return _tweedie(t, x, 1.0)


TWEEDIE_DEVIANCE = framework_loss(
    name="tweedie-deviance", home="sklearn", kinds=("pred",), params=(POWER,),
    summary="Mean Tweedie deviance (normal, Poisson, gamma, compound Poisson-gamma).",
    formula="l = 2·(y^(2−p)/((1−p)(2−p)) − y·μ^(1−p)/(1−p) + μ^(2−p)/(2−p)); p = 0, 1, 2 as their limits",
    validate=_tweedie_validate(lambda params: float(params.get("power", 0.0))),
    conventions={
        "sklearn": Convention("sklearn", "sklearn.metrics.mean_tweedie_deviance", "np.average over samples",
                              sklearn_tweedie, kinds=("pred",), params=("power",), reductions=("mean", "none"),
                              validate=_tweedie_validate(lambda params: float(params.get("power", 0.0)))),
    },
)

POISSON_DEVIANCE = framework_loss(
    name="poisson-deviance", home="sklearn", kinds=("pred",),
    summary="Mean Poisson deviance: twice the Poisson NLL minus that of the saturated model.",
    formula="l = 2·(y·log(y/μ) − y + μ), 0·log 0 = 0",
    validate=_tweedie_validate(lambda params: 1.0),
    conventions={
        "sklearn": Convention("sklearn", "sklearn.metrics.mean_poisson_deviance", "np.average over samples",
                              sklearn_poisson_deviance, kinds=("pred",), reductions=("mean", "none"),
                              validate=_tweedie_validate(lambda params: 1.0)),
    },
)

SPECS = (LOG_COSH, MAPE, MSLE, PINBALL, POISSON_DEVIANCE, TWEEDIE_DEVIANCE)
