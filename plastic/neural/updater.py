"""Updater: accumulate potentiation and depression, then apply them bounded.

A trainer writes, per trainable parameter ``w`` of a module, non-negative
magnitudes ``pos`` (potentiation) and ``neg`` (depression) with
:meth:`Updater.accumulate`, possibly many times per batch. Calls are reduced
into a running value (``sum``, ``mean``, ``max``, ``min`` or ``last``), so the
memory held is two tensors of ``w``'s shape plus two counters, whatever the
number of calls. :meth:`Updater.apply` then does

    (optional)  pos, neg <- all_reduce(pos), all_reduce(neg)      (torch.distributed)
                dw = upper(w) * pos - lower(w) * neg               (plastic.functional.bounding)
                dw <- dw * mask                                    (masked synapses never change)
                w  <- w + dw;  w <- clamp(w);  w <- normalize_rows(w)
                clear()

or :meth:`Updater.to_grad` writes ``-scale * dw`` into ``w.grad`` so that any
``torch.optim`` optimizer applies it (``SGD(lr=1)`` applies exactly ``dw``).

References: bounding kinds in :mod:`plastic.functional.bounding`; row
normalisation after Diehl & Cook (2015), Front. Comput. Neurosci. 9:99.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn

from plastic.functional.bounding import Bounding, clamp_, normalize_rows_
from plastic.functional.validation import all_finite, check_choice, check_positive
from plastic.neural.updater_checks import (
    ClampBounds,
    accumulator_key,
    buffer_key,
    buffer_names,
    check_bounding,
    check_clamp_pair,
    check_magnitude,
    check_masks,
    check_param_names,
    check_real_like,
    count_key,
    mask_key,
    per_name,
    resolve_path,
)

__all__ = ["REDUCTIONS", "Updater"]

REDUCTIONS = ("sum", "mean", "max", "min", "last")
ALL_REDUCE_OPS = (None, "sum", "mean")


class Updater(nn.Module):
    """Accumulates potentiation and depression per parameter of ``module`` and applies them.

    Parameters:
        module: the module owning the parameters (a reference is kept, not a
            copy, and it is not registered as a submodule: the updater's
            ``state_dict`` holds only the accumulators).
        params: names of ``nn.Parameter`` (or tensor attribute) of ``module``;
            dotted paths (``"synapse.delay"``) reach submodules.
        reduction: how calls to :meth:`accumulate` combine, one of
            ``"sum"`` (default), ``"mean"``, ``"max"``, ``"min"``, ``"last"``;
            each is a running value plus a count.
        bounding: a :class:`~plastic.functional.bounding.Bounding` for every
            parameter, or a dict per parameter name (missing names: additive).
        clamp: ``(w_min, w_max)`` (``None`` for an open side) applied after
            the update, or a dict per name.
        normalize: target L1 norm of each postsynaptic row (all dims but the
            first; Diehl & Cook's 78.4), or a dict per name.
        normalize_first: normalise before clamping (default: clamp, then
            normalise, as in Diehl & Cook's code).
        mask: per name, a bool (or {0, 1}) tensor of the parameter's shape;
            entries where it is False never change (clamp and normalisation
            included). Without one, a tensor attribute ``<name>_mask`` of
            ``module`` (e.g. a lateral connection's ``weight_mask``) is used.
        all_reduce: ``None``, ``"sum"`` or ``"mean"``: all-reduce the
            accumulators across ``torch.distributed`` ranks before applying.
        process_group: the group for ``all_reduce`` (``None``: default group).

    A net change given to :meth:`accumulate_signed` as the first call after a
    clear is held as it is (in the potentiation buffer) and split into its two
    parts only when something reads them (:meth:`pending`, :meth:`delta`,
    :meth:`sync`, :meth:`to_grad`, another accumulate, ``state_dict``): an
    additive, unmasked :meth:`apply` adds it directly, sparing three
    parameter-sized passes per window (issue 15, S1). Such a change, once
    applied or cleared, is zeroed only when something next reads its buffer:
    a change computed in :meth:`change_buffer` overwrites it anyway, sparing
    one more pass. Read the accumulators through those methods (or
    ``updater.<name>_potentiation``), not the buffer tables, in both cases.

    Buffers per parameter ``<name>``: ``<name>_potentiation``,
    ``<name>_depression`` (the reduced magnitudes), ``<name>_potentiation_count``,
    ``<name>_depression_count`` (calls received), and ``<name>_mask`` when
    given. Accumulators follow the parameter's device and dtype: after
    ``module.to(...)`` or ``updater.to(...)`` they are re-homed lazily on the
    next call.
    """

    # set with object.__setattr__ in __init__ (neither a submodule nor state): typed here
    _module: nn.Module
    _unsplit: set[str]
    _stale: set[str]

    def __init__(
        self,
        module: nn.Module,
        params: Sequence[str] = ("weight",),
        *,
        reduction: Literal["sum", "mean", "max", "min", "last"] = "sum",
        bounding: Bounding | Mapping[str, Bounding] | None = None,
        clamp: ClampBounds | Mapping[str, ClampBounds] | None = None,
        normalize: float | Mapping[str, float] | None = None,
        normalize_first: bool = False,
        mask: Mapping[str, Tensor] | None = None,
        all_reduce: Literal["sum", "mean"] | None = None,
        process_group: object | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
        names = check_param_names(module, params)
        check_choice(reduction, "reduction", REDUCTIONS)
        check_choice(all_reduce, "all_reduce", ALL_REDUCE_OPS)
        boundings = per_name(bounding, "bounding", names, check_bounding)
        clamps = per_name(clamp, "clamp", names, check_clamp_pair)
        normalizes = per_name(normalize, "normalize", names, lambda v, n: check_positive(v, n))
        masks = check_masks(mask, names, module)

        # Plain attribute, so the module is neither a submodule nor in state_dict.
        object.__setattr__(self, "_module", module)
        # names whose potentiation buffer holds a signed net change not yet split (depression: zeros)
        object.__setattr__(self, "_unsplit", set())
        # names whose potentiation buffer holds an applied (or cleared) whole change: zeros when read
        object.__setattr__(self, "_stale", set())
        self.params = names
        self.reduction = reduction
        self.bounding = boundings
        self.clamp = clamps
        self.normalize = normalizes
        self.normalize_first = bool(normalize_first)
        self.all_reduce = all_reduce
        self.process_group = process_group
        for name in names:
            param: Tensor = resolve_path(module, name)  # type: ignore[assignment]
            dtype = param.dtype if param.is_floating_point() else torch.get_default_dtype()
            for kind in ("potentiation", "depression"):
                # laid out like the parameter (an input-major weight's too): the apply's add is one
                # sequential pass over both
                self.register_buffer(accumulator_key(name, kind), torch.zeros_like(param, dtype=dtype).detach())
                self.register_buffer(count_key(name, kind), torch.zeros((), dtype=torch.int64, device=param.device))
            if name in masks:
                self.register_buffer(mask_key(name), masks[name])

    # ------------------------------------------------------------------ validation

    def _check_name(self, name: object) -> str:
        if name not in self.params:
            raise ValueError(f"name: expected one of {list(self.params)}, got {name!r}")
        return name

    # ------------------------------------------------------------------ state

    @property
    def module(self) -> nn.Module:
        """The module whose parameters are updated."""
        return self._module

    def parameter(self, name: str) -> Tensor:
        """The live tensor ``name`` of the module (follows ``module.to(...)``)."""
        return resolve_path(self.module, self._check_name(name))  # type: ignore[return-value]

    def _home(self, name: str, param: Tensor | None = None) -> Tensor:
        """Move ``name``'s buffers to the parameter's device (and floating dtype); return it (``param``:
        the parameter, where the caller has it already)."""
        if param is None:
            param = self.parameter(name)
        keys = buffer_names(name)
        buffers = self._buffers
        device = param.device
        floating = param.is_floating_point()
        for key in (keys.potentiation, keys.depression):
            accumulator: Tensor = buffers[key]  # type: ignore[assignment]
            dtype = param.dtype if floating else accumulator.dtype
            if accumulator.device != device or accumulator.dtype != dtype:
                buffers[key] = accumulator.to(device=device, dtype=dtype)
        for key in (keys.potentiation_count, keys.depression_count):
            count: Tensor = buffers[key]  # type: ignore[assignment]
            if count.device != device:
                buffers[key] = count.to(device)
        mask = buffers.get(keys.mask)
        if mask is not None and mask.device != device:
            buffers[keys.mask] = mask.to(device)
        return param

    def _accumulator(self, name: str, kind: str) -> Tensor:
        """The accumulator as its readers see it (a stale one zeroed first, see :meth:`_stored`)."""
        if name in self._stale:
            self._stale.discard(name)
            self._stored(name, "potentiation").zero_()
        return self._stored(name, kind)

    def _stored(self, name: str, kind: str) -> Tensor:
        """The accumulator's buffer as it is: for writers that overwrite all of it, and layout reads."""
        return self._buffers[accumulator_key(name, kind)]  # type: ignore[return-value]

    def _count(self, name: str, kind: str) -> Tensor:
        return self._buffers[count_key(name, kind)]  # type: ignore[return-value]

    def _mask(self, name: str, param: Tensor) -> Tensor | None:
        key = mask_key(name)
        if key in self._buffers:
            return self._buffers[key]
        implicit = resolve_path(self.module, f"{name}_mask")
        if isinstance(implicit, Tensor):
            return implicit.to(param.device) != 0
        return None

    def count(self, name: str) -> tuple[int, int]:
        """How many calls the potentiation and depression accumulators of ``name`` received."""
        self._check_name(name)
        return int(self._count(name, "potentiation")), int(self._count(name, "depression"))

    # ------------------------------------------------------------------ accumulate

    def accumulate(
        self,
        name: str,
        potentiation: Tensor | None = None,
        depression: Tensor | None = None,
    ) -> None:
        """Reduce one call's non-negative ``potentiation`` and ``depression`` into ``name``'s accumulators.

        Both must have the parameter's shape and device, be finite and >= 0
        (floating for a floating parameter). ``None`` leaves that accumulator
        (and its count) untouched. Everything is checked before any state changes.
        """
        self._check_name(name)
        param = self.parameter(name)
        checked = {}
        if potentiation is not None:
            checked["potentiation"] = check_magnitude(potentiation, "potentiation", param)
        if depression is not None:
            checked["depression"] = check_magnitude(depression, "depression", param)
        self._home(name, param)
        self._split(name)
        for kind, value in checked.items():
            self._reduce_into(self._accumulator(name, kind), self._count(name, kind), value.detach())

    def change_buffer(self, name: str) -> Tensor | None:
        """A tensor of ``name``'s shape to compute a net change in, then pass to :meth:`accumulate_signed`.

        While both accumulators are empty (counts 0) this is the potentiation
        buffer itself: a change computed in it is taken without a copy. Its
        contents are undefined until written. ``None`` when the accumulators
        hold something (compute the change elsewhere then).
        """
        self._check_name(name)
        param = self.parameter(name)
        self._home(name, param)
        positive = self._stored(name, "potentiation")  # stale or not: undefined until the caller writes it
        if name in self._unsplit or int(self._count(name, "potentiation")) or int(self._count(name, "depression")):
            return None
        if not param.is_floating_point() or positive.dtype != param.dtype:
            return None
        return positive

    def accumulate_signed(self, name: str, change: Tensor, *, known_finite: bool = False, owned: bool = False) -> None:
        """Reduce one call's signed ``change`` into ``name``'s accumulators as its two parts.

        The same as ``accumulate(name, potentiation=p, depression=p - change)``
        with ``p = max(change, 0)`` (so ``p - change = max(-change, 0)``; both
        exact), which is how a rule whose window yields one net change per
        synapse (the one-product pair STDP form) reports it.

        ``change`` must have the parameter's shape and device (and dtype, for
        a floating parameter) and be finite; everything is checked (one sum
        for finiteness) before any state changes. Empty accumulators keep the
        change whole (see the class notes); otherwise each part is reduced as
        by :meth:`accumulate`. Reading the counts synchronises with the device.

        Parameters:
            name: one of ``params``.
            change: the signed change, in the parameter's unit.
            known_finite: the caller proved ``change`` finite (a trainer from a
                bound on its inputs, :func:`~plastic.functional.stdp_checks.pair_change_bound`):
                its finiteness pass is skipped.
            owned: the caller hands ``change`` over (it neither reads nor writes it
                afterwards): into empty accumulators, a change laid out like them
                (:meth:`_adoptable`) becomes the potentiation buffer itself instead
                of being copied there (one parameter-sized pass fewer).
        """
        self._check_name(name)
        param = self.parameter(name)
        lent = self._stored(name, "potentiation")
        if (
            change is lent
            and change.shape == param.shape
            and change.dtype == param.dtype
            and change.device == param.device
        ):
            # the potentiation buffer itself (change_buffer's, written in place), of the parameter's
            # shape, dtype and device: a real tensor without a graph, as check_real_like would find
            tensor = change
        else:
            tensor = check_real_like(change, "change", param).detach()
        self._home(name, param)
        positive = self._stored(name, "potentiation")  # stale: overwritten whole below, or zeroed first
        negative = self._stored(name, "depression")
        count_positive = self._count(name, "potentiation")
        count_negative = self._count(name, "depression")
        in_buffer = (
            (
                tensor is positive
                or (
                    tensor.data_ptr() == positive.data_ptr()
                    and tensor.dtype == positive.dtype
                    and tensor.stride() == positive.stride()
                )
            )
            and name not in self._unsplit
            and int(count_positive) == 0
            and int(count_negative) == 0
        )
        if not known_finite and tensor.is_floating_point() and tensor.numel() and not all_finite(tensor):
            if in_buffer:
                self._stale.add(name)  # computed in the empty accumulator (change_buffer): empty again
            raise ValueError("change: expected finite values, found NaN or inf")
        if in_buffer:
            # computed in place by the caller (change_buffer): nothing to copy; the counts were 0
            self._stale.discard(name)
            self._unsplit.add(name)
            count_positive.fill_(1)
            count_negative.fill_(1)
            return
        if (
            tensor.dtype == positive.dtype
            # an accumulator passed back as the change would be overwritten while read
            and tensor.data_ptr() not in (positive.data_ptr(), negative.data_ptr())
            and int(count_positive) == 0
            and int(count_negative) == 0
        ):
            # empty accumulators hold zeros and every reduction's first call sets the value
            # (0 + x, 0 + (x - 0) / 1, copy, first extreme): the change is kept whole in the
            # potentiation buffer and split into the two parts when they are read (_split)
            if owned and self._adoptable(tensor, positive):
                self._buffers[accumulator_key(name, "potentiation")] = tensor
            else:
                positive.copy_(tensor)
            self._stale.discard(name)
            self._unsplit.add(name)
            count_positive.fill_(1)  # they were 0
            count_negative.fill_(1)
            return
        self._split(name)
        positive = self._accumulator(name, "potentiation")  # zeroed first where stale
        # finite change: both parts are finite and >= 0 by construction (no magnitude checks)
        potentiation = tensor.clamp(min=0)
        depression = potentiation - tensor
        self._reduce_into(positive, count_positive, potentiation)
        self._reduce_into(negative, count_negative, depression)

    @staticmethod
    def _adoptable(change: Tensor, accumulator: Tensor) -> bool:
        """Whether ``change`` may replace ``accumulator`` as it is: the same dtype, device and strides
        (so the same layout), and a storage of its own that it fills exactly (no view of a larger one)."""
        return (
            change.dtype == accumulator.dtype
            and change.device == accumulator.device
            and change.stride() == accumulator.stride()
            and change.storage_offset() == 0
            and change.untyped_storage().nbytes() == change.numel() * change.element_size()
        )

    def _split(self, name: str) -> None:
        """Split a pending net change ``x`` (held in the potentiation buffer) into its parts.

        ``potentiation = max(x, 0)`` and ``depression = max(x, 0) - x``, exactly
        as :meth:`accumulate_signed` defines them; nothing when none is pending.
        """
        if name not in self._unsplit:
            return
        self._unsplit.discard(name)
        positive = self._accumulator(name, "potentiation")
        negative = self._accumulator(name, "depression")
        torch.clamp(positive, max=0, out=negative)
        negative.neg_().add_(0.0)  # -min(x, 0) = max(x, 0) - x; + 0.0 turns -0.0 into 0.0
        positive.clamp_(min=0)

    def __getattr__(self, attribute: str) -> Tensor | nn.Module:
        # a buffer read by attribute (``updater.weight_potentiation``) sees the split parts
        for name in [*self.__dict__.get("_unsplit", ()), *self.__dict__.get("_stale", ())]:
            if attribute.startswith(f"{buffer_key(name)}_"):
                self._split(name)
                self._accumulator(name, "potentiation")  # a stale one is zeroed
        return super().__getattr__(attribute)

    def _save_to_state_dict(self, destination: dict[str, Any], prefix: str, keep_vars: bool) -> None:
        for name in list(self._unsplit):
            self._split(name)  # a checkpoint holds the two parts
        for name in list(self._stale):
            self._accumulator(name, "potentiation")  # and zeros where they are
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(self, *args: object, **kwargs: object) -> None:
        self._unsplit.clear()  # the loaded parts replace any pending change
        self._stale.clear()
        super()._load_from_state_dict(*args, **kwargs)

    def _reduce_into(self, accumulator: Tensor, count: Tensor, value: Tensor) -> None:
        """One running-reduction step; no host synchronisation (count stays on device)."""
        value = value.to(accumulator.dtype)
        if self.reduction == "sum":
            accumulator.add_(value)
        elif self.reduction == "mean":
            # Running mean m_n = m_{n-1} + (x_n - m_{n-1}) / n.
            accumulator.add_((value - accumulator) / (count + 1).to(accumulator.dtype))
        elif self.reduction == "last":
            accumulator.copy_(value)
        else:
            extreme = torch.maximum if self.reduction == "max" else torch.minimum
            # The first call sets the value (the zero start is not a sample).
            accumulator.copy_(torch.where(count > 0, extreme(accumulator, value), value))
        count.add_(1)

    def pending(self, name: str) -> tuple[Tensor, Tensor]:
        """Copies of the reduced ``(potentiation, depression)`` of ``name`` (zeros if none)."""
        self._check_name(name)
        self._home(name)
        self._split(name)
        return (
            self._accumulator(name, "potentiation").clone(),
            self._accumulator(name, "depression").clone(),
        )

    def has_pending(self, name: str | None = None) -> bool:
        """Whether ``name`` (any parameter if ``None``) received an accumulate call since the last clear."""
        names = self.params if name is None else (self._check_name(name),)
        return any(self._is_pending(n) for n in names)

    def _is_pending(self, name: str) -> bool:
        # one read per count (no comparison tensor)
        return int(self._count(name, "potentiation")) > 0 or int(self._count(name, "depression")) > 0

    # ------------------------------------------------------------------ distributed

    def sync(self, op: Literal["sum", "mean"] | None = None) -> None:
        """All-reduce every accumulator (and its count) across ``torch.distributed`` ranks.

        ``op`` defaults to the constructor's ``all_reduce``. ``"sum"`` adds
        accumulators over ranks; ``"mean"`` divides the sum by the world size.
        Counts are summed. Every rank must call this (it is collective), which
        :meth:`apply` ensures by syncing every parameter, pending or not.
        Raises ``ValueError`` when no process group is initialised.
        """
        op = self.all_reduce if op is None else op
        check_choice(op, "all_reduce", ("sum", "mean"))
        if not (dist.is_available() and dist.is_initialized()):
            raise ValueError(
                "all_reduce: requires an initialised torch.distributed process group "
                "(torch.distributed.init_process_group)"
            )
        world_size = dist.get_world_size(self.process_group)  # type: ignore[arg-type]
        for name in self.params:
            self._home(name)
            self._split(name)
            positive = self._accumulator(name, "potentiation")
            negative = self._accumulator(name, "depression")
            counts = torch.stack([self._count(name, "potentiation"), self._count(name, "depression")])
            # One collective per parameter: both magnitudes and both counts in one bucket.
            bucket = torch.cat([positive.flatten(), negative.flatten(), counts.to(positive.dtype)])
            dist.all_reduce(bucket, op=dist.ReduceOp.SUM, group=self.process_group)
            if op == "mean":
                bucket[:-2].div_(world_size)  # the magnitudes (the counts are summed)
            numel = positive.numel()
            positive.copy_(bucket[:numel].view_as(positive))
            negative.copy_(bucket[numel:-2].view_as(negative))
            self._count(name, "potentiation").copy_(bucket[-2].round().to(torch.int64))
            self._count(name, "depression").copy_(bucket[-1].round().to(torch.int64))

    # ------------------------------------------------------------------ apply

    def delta(self, name: str) -> Tensor:
        """The bounded, masked change ``dw`` that :meth:`apply` would add to ``name`` now."""
        param = self._home(self._check_name(name))
        self._split(name)
        positive = self._accumulator(name, "potentiation")
        negative = self._accumulator(name, "depression")
        bounding = self.bounding.get(name)
        weight = param.detach()
        if not weight.is_floating_point():
            weight = weight.to(positive.dtype)
        if bounding is None:
            dw = positive - negative
        else:
            dw = bounding(weight, positive, negative)  # type: ignore[operator]
        mask = self._mask(name, param)
        if mask is not None:
            dw = torch.where(mask, dw, torch.zeros((), dtype=dw.dtype, device=dw.device))
        return dw

    def _additive_unmasked(self, name: str, param: Tensor) -> bool:
        """Whether ``dw`` of ``name`` is plainly ``pos - neg`` in the parameter's own dtype.

        No bounding (or ``kind="none"``), no mask, a floating parameter whose
        dtype and device the accumulators share (homes ``name`` first).
        """
        bounding = self.bounding.get(name)
        if bounding is not None and bounding.kind != "none":  # type: ignore[attr-defined]
            return False
        self._home(name, param)
        if not param.is_floating_point() or self._mask(name, param) is not None:
            return False
        positive = self._stored(name, "potentiation")
        return positive.dtype == param.dtype and positive.device == param.device

    def constrain(self, name: str | None = None) -> None:
        """Apply the clamp and normalisation hooks to ``name`` (every parameter if ``None``).

        Called by :meth:`apply`; call it after ``optimizer.step()`` when using
        :meth:`to_grad`. Masked entries are restored, so they never change.
        """
        names = self.params if name is None else (self._check_name(name),)
        for each in names:
            self._constrain(each)

    def _constrain(self, name: str) -> None:
        clamp = self.clamp.get(name)
        target = self.normalize.get(name)
        if clamp is None and target is None:
            return
        param = self._home(name)
        mask = self._mask(name, param)
        with torch.no_grad():
            before = param.detach().clone() if mask is not None else None
            steps = ("normalize", "clamp") if self.normalize_first else ("clamp", "normalize")
            for step in steps:
                if step == "clamp" and clamp is not None:
                    clamp_(param, *clamp)  # type: ignore[misc]
                elif step == "normalize" and target is not None:
                    normalize_rows_(param, target)  # type: ignore[arg-type]
            if before is not None and mask is not None:
                param.copy_(torch.where(mask, param, before))

    def apply(self, fn: Callable[[nn.Module], None] | None = None) -> Updater:
        """Add the bounded change to every parameter with something pending, then constrain and clear.

        Order: all-reduce (if configured; every parameter, so ranks stay in
        step), ``dw`` from bounding and mask, ``param += dw`` (no autograd),
        clamp and normalise hooks, :meth:`clear`.

        ``apply(fn)`` with a function keeps ``nn.Module.apply``'s meaning, so
        ``parent.apply(init)`` still recurses through an updater.
        """
        if fn is not None:
            return super().apply(fn)
        if self.all_reduce is not None:
            self.sync()
        for name in self.params:
            # an unsplit net change is pending by construction (its accumulate counted it): no count read
            unsplit = name in self._unsplit
            if not unsplit and not self._is_pending(name):
                continue
            param = self.parameter(name)
            with torch.no_grad():
                additive = self._additive_unmasked(name, param)
                if additive and unsplit:
                    # an unsplit net change x: dw = max(x, 0) - (max(x, 0) - x) = x, added as it is
                    param.add_(self._accumulator(name, "potentiation"))
                elif additive:
                    # dw = pos - neg computed in the potentiation accumulator, which is cleared
                    # below anyway: the same values as delta(), without a parameter-sized temporary
                    positive = self._accumulator(name, "potentiation")
                    param.add_(positive.sub_(self._accumulator(name, "depression")))
                else:
                    dw = self.delta(name)
                    if param.is_floating_point():
                        param.add_(dw.to(param.dtype))
                    else:
                        param.add_(torch.round(dw).to(param.dtype))
            self._constrain(name)
            self._clear(name)
        return self

    def to_grad(self, scale: float = 1.0, accumulate: bool = True) -> None:
        """Write ``-scale * dw`` into each pending parameter's ``.grad``, then clear.

        A torch optimizer then applies the change (``SGD(lr=1)`` with
        ``scale=1`` adds exactly ``dw``). With ``accumulate`` an existing grad
        is added to, else replaced. Clamp and normalisation are not applied
        here: call :meth:`constrain` after ``optimizer.step()``.
        """
        scale = float(check_positive(scale, "scale"))
        for name in self.params:
            if not self.parameter(name).is_floating_point():
                raise TypeError(f"params: {name!r} is not floating point and cannot hold a gradient")
        if self.all_reduce is not None:
            self.sync()
        for name in self.params:
            if not self.has_pending(name):
                continue
            param = self.parameter(name)
            gradient = (-scale * self.delta(name)).to(param.dtype)
            if accumulate and param.grad is not None:
                param.grad.add_(gradient)
            else:
                param.grad = gradient
            self._clear(name)

    # ------------------------------------------------------------------ clear

    def _clear(self, name: str) -> None:
        if name in self._unsplit:  # the change is zeroed when read, or overwritten by the next one
            self._unsplit.discard(name)
            self._stale.add(name)
        elif name not in self._stale:
            for kind in ("potentiation", "depression"):
                self._stored(name, kind).zero_()
        for kind in ("potentiation", "depression"):
            self._count(name, kind).zero_()

    def clear(self) -> None:
        """Drop everything accumulated (accumulators and counts to zero)."""
        for name in self.params:
            self._clear(name)

    def reset(self) -> None:
        """Restore the initial state (same as :meth:`clear`)."""
        self.clear()

    def extra_repr(self) -> str:
        parts = [f"params={list(self.params)}", f"reduction={self.reduction!r}"]
        if self.bounding:
            parts.append(f"bounding={self.bounding}")
        if self.clamp:
            parts.append(f"clamp={self.clamp}")
        if self.normalize:
            parts.append(f"normalize={self.normalize}")
        if self.all_reduce is not None:
            parts.append(f"all_reduce={self.all_reduce!r}")
        return ", ".join(parts)
