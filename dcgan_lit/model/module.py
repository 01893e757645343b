"""The DCGAN LightningModule: manual optimization, D steps then one G step per batch."""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import lightning as L
import torch

from dcgan_lit.batches import Block, BlockSchedule
from dcgan_lit.model.diffaugment import AdaptiveAugment, DiffAugment, parse_policy
from dcgan_lit.model.ema import decay_at, make_ema, recompute_batch_norm, update_ema
from dcgan_lit.model.graph import IterationGraph, graph_refusal
from dcgan_lit.model.losses import (
    LeCam,
    check_lecam,
    check_loss,
    discriminator_loss,
    generator_loss,
    is_number,
)
from dcgan_lit.model.networks import (
    PAPER,
    Discriminator,
    Generator,
    check_d_norm,
    count_parameters,
    init_weights,
)
from dcgan_lit.model.rng import rng_states, set_rng_states
from dcgan_lit.model.sampling import eval_mode, frozen, sampling_generator

OptimizerFactory = Callable[..., torch.optim.Optimizer]
# Called inside every iteration with its metrics and the device-side count of iterations done (device ops only:
# no host read), e.g. the divergence guard's running sums.
IterationObserver = Callable[[dict[str, torch.Tensor], torch.Tensor], None]

log = logging.getLogger(__name__)

# Devices where torch.compile fails on channels_last transposed convolutions' backward (CPU compiles them).
COMPILE_NCHW_DEVICES = ("cuda", "mps")


class StepResult(NamedTuple):
    """What one adversarial step computed: the losses, and D's logits on the real and fake batch."""

    loss_d: torch.Tensor
    loss_g: torch.Tensor
    logits_real: torch.Tensor
    logits_fake: torch.Tensor


def default_adam(
    params, lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999), **options
) -> torch.optim.Optimizer:
    """The paper's optimizer: Adam, lr 2e-4, beta1 0.5 (``options``: Adam's others, e.g. ``fused``)."""
    return torch.optim.Adam(params, lr=lr, betas=betas, **options)


def check_options(
    loss: str,
    label_smoothing: float,
    d_norm: str,
    augment_policy: str | list[str] | None,
    ema: dict | None,
    lecam: dict | None = None,
    ada: dict | None = None,
) -> None:
    """Raises ValueError (one line naming the key) for a loss, smoothing, D normalisation, DiffAugment policy,
    EMA, LeCam or adaptive augmentation setting that DCGAN does not take; config validation calls this before any data are read."""
    check_loss(loss, label_smoothing)
    check_lecam(lecam)
    check_ada(ada, parse_policy(augment_policy))
    check_d_norm(d_norm)
    ema = {} if ema is None else ema
    if not isinstance(ema, Mapping):
        raise ValueError(f"model.ema={ema} must be a mapping of {', '.join(EMA_KEYS)}")
    unknown = sorted(set(ema) - set(EMA_KEYS))
    if unknown:
        raise ValueError(
            f"model.ema.{unknown[0]} is not an EMA option; the options are {', '.join(EMA_KEYS)}"
        )
    decay = ema.get("decay")
    if decay is not None and (not is_number(decay) or not 0.0 <= decay < 1.0):
        raise ValueError(f"model.ema.decay={decay} must be in [0, 1) (e.g. 0.999), or null to switch EMA off")
    for key in ("warmup", "recompute_bn"):
        if not isinstance(ema.get(key, False), bool):
            raise ValueError(f"model.ema.{key}={ema[key]} must be true or false")


def check_ada(ada: Mapping | None, policy: list[str]) -> None:
    """Raises ValueError (one line naming the key) for a ``model.ada`` setting it does not take."""
    ada = {} if ada is None else ada
    if not isinstance(ada, Mapping) or set(ada) - set(ADA_KEYS):
        raise ValueError(f"model.ada={ada} must be a mapping of {', '.join(ADA_KEYS)}")
    target = ada.get("target")
    if target is None:
        return
    if not is_number(target) or not 0.0 < target < 1.0:
        raise ValueError(f"model.ada.target={target} must be in (0, 1) (ADA's 0.6), or null to switch it off")
    if not policy:
        raise ValueError(
            "model.ada.target needs operations to adapt: set augment=diffaugment (or augment.policy)"
        )
    speed = ada.get("speed_images")
    if "speed_images" in ada and (not is_number(speed) or speed <= 0):
        raise ValueError(f"model.ada.speed_images={speed} must be a positive number of images (ADA's 500000)")


NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def skip_failing_nvml_check() -> None:
    """Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` when imported (so that asking whether CUDA is available
    does not initialise it before a fork), and torch's Adam asks that before every step. Where NVIDIA's management
    library cannot be loaded (no NVIDIA driver: every CPU-only machine), torch tries to load it again at every
    question and then takes the CUDA runtime's answer anyway: ~0.09 ms per optimizer step, for the same answer.
    There the variable is dropped; where the library loads, it is kept."""
    if os.environ.get(NVML_CHECK) != "1":
        return
    try:
        ctypes.CDLL("libnvidia-ml.so.1")  # the name torch loads
    except OSError:
        del os.environ[NVML_CHECK]


class DirectOptimizer:
    """A Lightning optimizer stepped without Lightning's hooks around each step (its steps still counted, so
    ``global_step`` is the same): what a training iteration uses where those hooks do nothing
    (:func:`lightning_step_hooks_needed`)."""

    def __init__(self, wrapped) -> None:
        self.wrapped, self.optimizer = wrapped, wrapped.optimizer

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.wrapped._on_before_step()  # Lightning's count of optimizer steps (global_step) and its profiler
        self.optimizer.step()
        self.wrapped._on_after_step()

    def count(self) -> None:
        """A step taken elsewhere (a CUDA graph's replay), counted."""
        self.wrapped._on_before_step()
        self.wrapped._on_after_step()


def lightning_step_hooks_needed(trainer) -> bool:
    """Whether an iteration must go through Lightning's ``manual_backward`` and optimizer wrapper: under a
    strategy other than one device (DDP prepares its gradient reduction there), with a loss scaler (16-mixed),
    or when a callback or the module overrides a hook they call (``on_before_backward``, ``on_after_backward``,
    ``on_before_optimizer_step``). Otherwise they only dispatch hooks that do nothing, a tenth of a small
    iteration's time, and the iteration calls ``Tensor.backward`` and the optimizers directly: the same numbers."""
    from lightning.pytorch.plugins.precision import MixedPrecision, Precision
    from lightning.pytorch.strategies import SingleDeviceStrategy

    if trainer is None or type(trainer.strategy) is not SingleDeviceStrategy:
        return True
    plugin = trainer.precision_plugin
    if not (type(plugin) is Precision or (type(plugin) is MixedPrecision and plugin.scaler is None)):
        return True
    hooks = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
    overridden = [(type(c), L.Callback) for c in trainer.callbacks]
    overridden.append((type(trainer.lightning_module), L.LightningModule))
    return any(getattr(kind, hook) is not getattr(base, hook) for kind, base in overridden for hook in hooks)


# model.ada: the adaptive augmentation's settings (conf/model/_base.yaml documents each)
ADA_KEYS = ("target", "interval", "speed_images")

# model.ema: what the average of G takes (conf/model/_base.yaml documents each)
EMA_KEYS = ("decay", "start_step", "warmup", "recompute_bn")


class DCGAN(L.LightningModule):
    """Trains a DCGAN generator and discriminator with the non-saturating GAN loss.

    The defaults are the paper's. Options for small data: ``loss`` (bce | hinge | lsgan) with one-sided
    ``label_smoothing``, ``d_norm`` (batch | spectral | none), DiffAugment ``augment_policy`` on every image D
    sees, ``ema`` ({decay, start_step, warmup, recompute_bn}): an average of G, :attr:`generator_ema`,
    used for samples, ``lecam`` ({weight, decay}): the LeCam regulariser of D (:class:`~.losses.LeCam`), and
    ``ada`` ({target, interval, speed_images}): DiffAugment at an adaptive probability
    (:class:`~.diffaugment.AdaptiveAugment`).

    ``conditional`` (with the data's ``class_names``): class-conditional G (a class embedding joined to z) and
    projection D (Miyato & Koyama 2018); batches are then ``(images, labels)`` and each fake takes the label of
    the real image beside it, so both see the data's class frequencies.

    Each training iteration (one batch) takes ``d_steps`` Adam steps of D, then one Adam step of G, so
    Lightning's ``global_step`` (which counts optimizer steps) advances by ``d_steps + 1`` per batch;
    :attr:`iteration` counts batches.
    """

    def __init__(
        self,
        image_size: int = PAPER["image_size"],
        channels: int = PAPER["channels"],
        latent_dim: int = PAPER["latent_dim"],
        ngf: int = PAPER["ngf"],
        ndf: int = PAPER["ndf"],
        g_activation: str = PAPER["g_activation"],
        d_steps: int = 1,
        optimizer_g: OptimizerFactory | None = None,
        optimizer_d: OptimizerFactory | None = None,
        num_fixed_samples: int = 64,
        iterations_per_step: int = 1,
        cuda_graph: bool = False,
        channels_last: bool = True,
        compile: bool = False,
        loss: str = "bce",
        label_smoothing: float = 0.0,
        d_norm: str = PAPER["d_norm"],
        augment_policy: str | list[str] | None = None,
        ema: dict | None = None,
        lecam: dict | None = None,
        ada: dict | None = None,
        conditional: bool = False,
        class_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        check_options(loss, label_smoothing, d_norm, augment_policy, ema, lecam, ada)
        if conditional and not class_names:
            raise ValueError(
                "model.conditional=true needs the data's class names (train.py takes them from it)"
            )
        # Plain containers, not Hydra's DictConfig/ListConfig: checkpoints must load with weights_only=True.
        ema = dict(ema) if ema else None
        lecam = dict(lecam) if lecam else None
        ada = dict(ada) if ada else None
        class_names = [str(name) for name in class_names] if conditional else None
        augment_policy = list(DiffAugment(augment_policy).policy)
        self.save_hyperparameters(ignore=["optimizer_g", "optimizer_d"])
        self.automatic_optimization = False
        num_classes = len(class_names) if class_names else None
        self.generator = Generator(
            latent_dim, image_size, channels, ngf, g_activation, num_classes, class_names
        )
        self.discriminator = Discriminator(image_size, channels, ndf, norm=d_norm, num_classes=num_classes)
        self.generator.apply(init_weights)
        self.discriminator.apply(init_weights)
        adaptive = ada is not None and ada.get("target") is not None
        self.augment = AdaptiveAugment(augment_policy, **ada) if adaptive else DiffAugment(augment_policy)
        # registered only when on, so checkpoints of runs without it are unchanged
        self.lecam = LeCam(**lecam) if lecam and lecam.get("weight") else None
        self.ema_decay = (ema or {}).get("decay")
        self.ema_start_step = int((ema or {}).get("start_step") or 0)
        self.ema_warmup = bool((ema or {}).get("warmup", False))
        self.ema_recompute_bn = bool((ema or {}).get("recompute_bn", False))
        self._ema_statistics_current = False  # with recompute_bn: whether the average's BatchNorm fits it
        if self.ema_decay is not None:
            # Train mode like every other submodule (Lightning warns about eval-mode modules at fit start); it
            # never runs in training, and whoever samples from it switches it to eval (sample_fixed, FID).
            self.generator_ema = make_ema(self.generator).train()
        self.optimizer_g = optimizer_g or default_adam
        self.optimizer_d = optimizer_d or default_adam
        # The latent batch behind every sample grid; a buffer, so it is saved in checkpoints and a resumed
        # run keeps drawing the same grid.
        self.register_buffer("fixed_noise", torch.randn(num_fixed_samples, latent_dim, 1, 1))
        # Iterations completed, on the device, for what an iteration computes from it without a host read (the
        # EMA's decay, the divergence guard's first bad iteration); set from the step count when training starts
        # (not saved: a checkpoint's global_step already says it)
        self.register_buffer("device_iteration", torch.zeros((), dtype=torch.float32), persistent=False)
        self._speed_options_applied = False
        self.last_step_metrics: dict[str, torch.Tensor] = {}
        self.iteration_observers: list[IterationObserver] = []
        # with cuda_graph, where it applies (decided at the first step)
        self._graph: IterationGraph | None = None
        self._graph_decided = False
        # whether iterations go through Lightning's backward and optimizer wrappers (decided at a fit's first step)
        self._lightning_step_hooks: bool | None = None

    # ----------------------------------------------------------------------------------------------
    # The algorithm (Goodfellow et al. 2014, Algorithm 1, with the non-saturating G loss; DCGAN settings)
    # ----------------------------------------------------------------------------------------------
    def training_step(self, batch: Block | torch.Tensor | tuple, batch_idx: int) -> dict[str, torch.Tensor]:
        """The block's iterations in a row (one unless ``iterations_per_step`` asks for more; the data module
        ends blocks where something is scheduled). Returns, and logs when due, the last iteration's metrics."""
        if isinstance(batch, Block):
            block = batch
        else:  # a data module of one's own: one batch of float images per step
            images, labels = self.split_batch(batch)
            block = Block(images, labels=labels)
        opt_d, opt_g = self.optimizers()
        if self._lightning_step_hooks is None:  # once per fit, not per step
            self._lightning_step_hooks = lightning_step_hooks_needed(self._trainer)
        self.count_iterations_as_batches(block.iterations)
        if self.graphed(block):
            direct = DirectOptimizer(opt_d), DirectOptimizer(opt_g)
            metrics = self._graph.run(
                block, opt_d.optimizer, opt_g.optimizer, lambda: self.count_steps(*direct)
            )
            self.last_step_metrics = metrics
        else:
            backward = self.manual_backward
            if not self._lightning_step_hooks:
                opt_d, opt_g, backward = DirectOptimizer(opt_d), DirectOptimizer(opt_g), torch.Tensor.backward
            for i in range(block.iterations):
                metrics = self.train_iteration(block, block.picked(i), opt_d, opt_g, backward)
        if self.logs_this_iteration():
            self.log_dict(metrics, prog_bar=False)
        return metrics

    def train_iteration(
        self,
        block: Block,
        picked: torch.Tensor | slice,
        opt_d: torch.optim.Optimizer,
        opt_g: torch.optim.Optimizer,
        backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
    ) -> dict[str, torch.Tensor]:
        """One training iteration: its real batch taken from the block (and flipped), the D steps and the G
        step, the EMA's update, the metrics, the observers' bookkeeping. Device operations only, the same ones
        every iteration: what a CUDA graph captures."""
        real, labels = block.gather(picked)
        step = self.adversarial_step(real, opt_d, opt_g, backward=backward, labels=labels)
        self.device_iteration.add_(1)
        self.update_generator_ema()
        metrics = {
            "train/loss_d": step.loss_d.detach(),
            "train/loss_g": step.loss_g.detach(),
            "train/d_real": torch.sigmoid(step.logits_real.detach()).mean(),  # D(x)
            "train/d_fake": torch.sigmoid(step.logits_fake.detach()).mean(),  # D(G(z)) before D's step
        }
        if isinstance(self.augment, AdaptiveAugment):
            metrics["train/augment_p"] = self.adapt_augmentation(step.logits_real, real.size(0))
        for observe in self.iteration_observers:
            observe(metrics, self.device_iteration)
        # every iteration's values, logged or not: for the checkpoint's finiteness check, and returned for the
        # divergence guard (on_train_batch_end's ``outputs``)
        self.last_step_metrics = metrics
        return metrics

    def adversarial_step(
        self,
        real: torch.Tensor,
        opt_d: torch.optim.Optimizer,
        opt_g: torch.optim.Optimizer,
        backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
        labels: torch.Tensor | None = None,
    ) -> StepResult:
        """``d_steps`` Adam steps of D, then one of G, on one batch of real images in [-1, 1].

        ``backward`` is Lightning's ``manual_backward`` in training (precision plugins, DDP); the speed
        benchmark times this same method in a plain loop with ``Tensor.backward``. ``labels`` (conditional):
        the real images' classes, also given to the fakes; None leaves every call as the unconditional one.
        """
        loss, smoothing, augment = self.hparams.loss, self.hparams.label_smoothing, self.augment
        batch_size = real.size(0)

        # (1) Update D: maximize log D(x) + log(1 - D(G(z)))  (augment is the identity unless DiffAugment is on)
        for _ in range(self.hparams.d_steps):
            fake = self.generator(self.sample_noise(batch_size), labels)
            logits_real = self.discriminator(augment(real), labels)
            logits_fake = self.discriminator(augment(fake.detach()), labels)
            loss_d = discriminator_loss(loss, logits_real, logits_fake, smoothing)
            if self.lecam is not None:  # LeCam: D's outputs on real and fake kept from drifting apart
                loss_d = loss_d + self.lecam(logits_real, logits_fake)
            opt_d.zero_grad(set_to_none=True)
            backward(loss_d)
            opt_d.step()
            # autocast keeps low-precision copies of the weights it cast (G's too) until its context exits: D's
            # just changed, and G's change before they are cast again (the next iteration of a block)
            torch.clear_autocast_cache()

        # (2) Update G: maximize log D(G(z)); D's parameters are frozen so they gather no gradients
        with frozen(self.discriminator):
            loss_g = generator_loss(loss, self.discriminator(augment(fake), labels))
            opt_g.zero_grad(set_to_none=True)
            backward(loss_g)
            opt_g.step()
        return StepResult(loss_d, loss_g, logits_real, logits_fake)

    # ----------------------------------------------------------------------------------------------
    # Machinery
    # ----------------------------------------------------------------------------------------------
    def logs_this_iteration(self) -> bool:
        """Whether this iteration's metrics are logged: when Lightning writes step metrics (every
        ``trainer.log_every_n_steps``; it asks the same private question before writing) and on the run's last
        iteration (``train.py`` returns the final metrics, e.g. to a sweeper). Logging the others only fed
        Lightning's result collection: a quarter of a small step's time (docs/performance.md)."""
        trainer = self._trainer
        connector = getattr(trainer, "_logger_connector", None)
        if connector is None or connector.should_update_logs:
            return True
        steps = self.optimizer_steps_per_iteration
        last_step = trainer.max_steps > 0 and trainer.global_step + steps >= trainer.max_steps
        last_epoch = trainer.max_epochs not in (None, -1) and trainer.current_epoch + 1 >= trainer.max_epochs
        return last_step or (last_epoch and trainer.is_last_batch)

    def graphed(self, block: Block) -> bool:
        """With ``cuda_graph``: whether this run's iterations are a replayed CUDA graph, decided at its first
        step (a refusal is one warning, and the run trains eagerly)."""
        if self.hparams.cuda_graph and not self._graph_decided:
            self._graph_decided = True
            trainer = self._trainer
            reason = graph_refusal(
                self.device,
                str(trainer.precision),
                trainer.world_size,
                isinstance(self.augment, AdaptiveAugment),
                block,
                compiled=bool(self.hparams.compile),
            )
            if reason is None and self._lightning_step_hooks:
                reason = "a callback or the module overrides Lightning's backward or optimizer-step hooks"
            if reason is None:
                self._graph = IterationGraph(self.train_iteration)
            else:
                log.warning("model.cuda_graph=true, but %s: training eagerly", reason)
        return self._graph is not None

    def count_steps(self, opt_d: DirectOptimizer, opt_g: DirectOptimizer) -> None:
        """Tells Lightning of one iteration's optimizer steps that ran inside a graph (its ``global_step``)."""
        for _ in range(self.hparams.d_steps):
            opt_d.count()
        opt_g.count()

    def count_iterations_as_batches(self, iterations: int) -> None:
        """Lightning counts one batch per ``training_step`` and logs at its batch count; a block of several
        iterations moves that count to the iterations done, so logs keep their iteration on the x axis (blocks
        end at every logging iteration, see :meth:`block_schedule`)."""
        loop = getattr(self._trainer, "fit_loop", None) if self._trainer is not None else None
        if iterations > 1 and loop is not None:
            loop.epoch_loop._batches_that_stepped += iterations - 1

    def block_schedule(self) -> BlockSchedule:
        """Where the data module ends blocks of iterations: every ``iterations_per_step``, and at every iteration
        where something is scheduled (logging; the callbacks' ``iteration_periods``; ``max_steps``)."""
        trainer = self._trainer
        if trainer is None:
            return BlockSchedule.of(self.hparams.iterations_per_step, ())
        periods = [trainer.log_every_n_steps]
        for callback in trainer.callbacks:
            if callable(getattr(callback, "iteration_periods", None)):
                periods += callback.iteration_periods()
        last = trainer.max_steps // self.optimizer_steps_per_iteration if trainer.max_steps > 0 else None
        return BlockSchedule.of(self.hparams.iterations_per_step, periods, last)

    def configure_model(self) -> None:
        """Speed options: the channels_last memory layout and torch.compile of G and D (in place, so
        parameter names and checkpoints are unchanged). Lightning may call this more than once."""
        if self._speed_options_applied:
            return
        self._speed_options_applied = True
        if self.hparams.channels_last and self.hparams.compile and self.device.type in COMPILE_NCHW_DEVICES:
            log.warning(
                "model.compile=true on %s: G and D stay in the NCHW layout, not channels_last (torch's inductor "
                "mispredicts the strides of a channels_last transposed-convolution backward on %s and stops; "
                "pytorch issue 171622)",
                self.device.type,
                self.device.type,
            )
        elif self.hparams.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
            if self.ema_decay is not None:
                self.generator_ema.to(memory_format=torch.channels_last)
        if self.hparams.compile:
            self.generator.compile()
            self.discriminator.compile()

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        skip_failing_nvml_check()  # Adam's every step asks whether CUDA is available
        return [
            self.build_optimizer(self.optimizer_d, self.discriminator.parameters()),
            self.build_optimizer(self.optimizer_g, self.generator.parameters()),
        ]

    def build_optimizer(self, factory: OptimizerFactory, parameters) -> torch.optim.Optimizer:
        """``factory(parameters)``; on CUDA fused (one kernel per step over all tensors where the default
        launches several per parameter group and step) unless the config chose ``fused`` or ``foreach`` itself
        or the optimizer has no fused form; in graph mode also ``capturable`` (a replayed step keeps its step
        counts on the device)."""
        params = list(parameters)
        graph = {"capturable": True} if self.hparams.cuda_graph and self.device.type == "cuda" else {}
        chosen = set(getattr(factory, "keywords", None) or {})
        if self.device.type == "cuda" and not {"fused", "foreach"} & chosen:
            try:
                return factory(params, fused=True, **graph)
            except (TypeError, RuntimeError):
                pass  # no fused implementation of this optimizer (or of these tensors): its default one
        if not graph:
            return factory(params)
        try:
            return factory(params, **graph)
        except TypeError as error:
            raise ValueError(
                f"model.cuda_graph=true needs optimizers that take capturable=True (torch.optim.Adam, AdamW): {error}"
            ) from None

    def on_fit_start(self) -> None:
        # Lightning seeds every DDP process alike; without an offset all ranks would draw the same z each step.
        if self.trainer.world_size > 1:
            torch.manual_seed(torch.initial_seed() + self.global_rank)

    def adapt_augmentation(self, logits_real: torch.Tensor, batch_size: int) -> torch.Tensor:
        """ADA: D's verdicts on this batch's real images gathered; every ``interval`` iterations the
        augmentation probability adjusted. Returns the probability (a device tensor, logged)."""
        self.augment.observe(logits_real)
        if self.iteration % self.augment.interval == 0:
            self.augment.adjust(self.augment.interval * batch_size * self.trainer.world_size)
        return self.augment.p.detach().clone()

    def update_generator_ema(self) -> None:
        """After G's step: follow G exactly until ``ema.start_step`` iterations, then average it. The decay is
        computed on the device from a device-side count of iterations (no host read, the same operations in every
        phase of the average)."""
        if self.ema_decay is None:
            return
        decay = decay_at(self.ema_decay, self.device_iteration, self.ema_warmup, self.ema_start_step)
        update_ema(self.generator_ema, self.generator, decay)
        self._ema_statistics_current = False

    def refresh_ema_statistics(self) -> None:
        """With ``ema.recompute_bn``: the average's BatchNorm statistics recomputed from its own samples, once
        per change of its weights (:func:`~dcgan_lit.model.sampling.sampling_generator` calls this)."""
        if self.ema_decay is None or not self.ema_recompute_bn or self._ema_statistics_current:
            return
        recompute_batch_norm(self.generator_ema, self.hparams.latent_dim)
        self._ema_statistics_current = True

    def split_batch(
        self, batch: torch.Tensor | tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(real images, class labels or None): a conditional model's batches are (images, labels)."""
        return batch if self.hparams.conditional else (batch, None)

    def sample_noise(self, n: int) -> torch.Tensor:
        """z ~ N(0, I), shaped (n, latent_dim, 1, 1) on this module's device."""
        return torch.randn(n, self.hparams.latent_dim, 1, 1, device=self.device)

    @property
    def class_names(self) -> list[str]:
        """The classes of a conditional model ([] when unconditional)."""
        return list(self.hparams.get("class_names") or [])

    @torch.no_grad()
    def sample_fixed(self, per_class: int = 8) -> torch.Tensor:
        """G(fixed_noise) in eval mode (the EMA G when enabled), in [-1, 1]; train/eval state is restored.

        Conditional: the first ``per_class`` fixed z's in every class, class by class (one grid row per class
        with ``per_class`` columns: the same z down each column).
        """
        z, labels = self.fixed_noise, None
        if self.class_names:
            columns = min(per_class, z.size(0))
            z = z[:columns].repeat(len(self.class_names), 1, 1, 1)
            labels = torch.arange(len(self.class_names), device=z.device).repeat_interleave(columns)
        with eval_mode(sampling_generator(self)) as generator:
            return generator(z, labels)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["rng_states"] = rng_states()  # with the data order (datamodule state): an exact resume
        if self.ema_decay is not None and self.ema_recompute_bn:
            # the state dict was taken before this hook: give it the average's own statistics
            self.refresh_ema_statistics()
            for name, buffer in self.generator_ema.named_buffers():
                checkpoint["state_dict"][f"generator_ema.{name}"] = buffer.detach().clone()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._resumed_rng_states = checkpoint.get("rng_states")

    def on_train_start(self) -> None:
        self.device_iteration.fill_(self.iteration)
        self._lightning_step_hooks = None  # this fit's callbacks decide, at its first step
        # Restored here, not at load: set-up after loading (callbacks' on_train_start, which run before this
        # hook, the sampler's seed) draws random numbers; a resumed epoch may not call on_train_epoch_start.
        if states := getattr(self, "_resumed_rng_states", None):
            set_rng_states(states)
            self._resumed_rng_states = None
            if self.global_rank > 0:  # the checkpoint holds rank 0's states: each rank needs its own z
                torch.manual_seed(int(torch.randint(2**31 - 1, ())) + self.global_rank)

    @property
    def optimizer_steps_per_iteration(self) -> int:
        """Lightning's global_step advances by this much per batch (d_steps D steps + 1 G step)."""
        return self.hparams.d_steps + 1

    @property
    def iteration(self) -> int:
        """Training iterations (batches) completed: global_step // (d_steps + 1)."""
        return self.trainer.global_step // self.optimizer_steps_per_iteration

    def parameter_counts(self) -> dict[str, int]:
        return {
            "params/generator": count_parameters(self.generator),
            "params/discriminator": count_parameters(self.discriminator),
        }
