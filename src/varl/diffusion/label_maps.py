"""The corrupted-segmenter toy of Ctrl-U at tiny scale (spec alignprop_ctrlu.md §4.3).

Everything here is pure torch and built on the fly (no weights are downloaded):

- conditions: random ``[N, 16, 16]`` label maps with ``K`` = 3 or 4 classes — class 0 is the
  background, every other class is painted as one axis-aligned rectangle or ellipse;
- images: each region filled with its class colour (:data:`PALETTE`) plus Gaussian texture
  noise, clamped to [-1, 1] (the data the diffusion model learns);
- segmenters: the reward model g (:class:`ConvSegmenter`, 3×3 convolutions) and a
  differently built oracle (:class:`DilatedSegmenter`, a 5×5 and a dilated 3×3 convolution with
  group norm), both trained in seconds on clean images by :func:`train_segmenter`;
- the input-dependent corruption of g (spec §4.3 option (a), our construction [O]):
  ``logits_k(x) = g_k(x) + β·A·sin(ω·(w_k ⋆ x))`` with a fixed random unit-norm 3×3 filter w_k
  per class, β the corruption level (:class:`CorruptedSegmenter`). The added term is steep in
  the input (slope β·A·ω), so two nearly identical images — the t and t + Δ twins of Ctrl-U —
  can be segmented differently exactly where it is steep, and its gradient is large and
  unrelated to the true class;
- metrics: :func:`mean_iou` and :func:`pixel_accuracy` of predicted label maps.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

PALETTE = torch.tensor(
    [
        [-0.6, -0.6, -0.6],  # 0: background, dark grey
        [0.8, -0.5, -0.4],  # 1: red
        [-0.4, 0.7, -0.5],  # 2: green
        [-0.5, -0.3, 0.8],  # 3: blue
    ]
)
"""Class colours in [-1, 1], ``[4, 3]``; a K-class toy uses the first K rows."""

MAX_CLASSES = PALETTE.shape[0]


def _check_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise TypeError(f"num_classes: expected an int, got {type(num_classes).__name__}")
    if not 2 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"num_classes: expected an int in [2, {MAX_CLASSES}], got {num_classes}")
    return num_classes


def check_label_maps(labels: Tensor, num_classes: int, *, name: str = "labels") -> None:
    """Checks that ``labels`` is an integer ``[B, H, W]`` map with values in [0, K − 1].

    Raises:
        TypeError: If ``labels`` is not an integer tensor.
        ValueError: If it is not 3-D or holds a class outside [0, ``num_classes`` − 1].
    """
    if not isinstance(labels, Tensor) or labels.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name}: expected an int64 tensor [B, H, W] of class indices")
    if labels.dim() != 3:
        raise ValueError(f"{name}: expected shape [B, H, W], got {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"{name}: expected classes in [0, {num_classes - 1}], got values in "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )


def random_label_maps(
    n: int, *, size: int = 16, num_classes: int = 4, generator: torch.Generator | None = None
) -> Tensor:
    """Draws ``n`` label maps: background 0 and one rectangle or ellipse per other class.

    The foreground classes are painted in a random order (later shapes cover earlier ones); each
    shape has sides (or diameters) between ``size // 4`` and ``size * 5 // 8`` at a random
    position, so most maps show every class.

    Args:
        n: Number of maps (>= 1).
        size: Height and width (>= 8).
        num_classes: K in [2, 4], background included.
        generator: Source of randomness.

    Returns:
        ``[n, size, size]`` int64 class indices.

    Raises:
        ValueError: On ``n`` < 1, ``size`` < 8 or ``num_classes`` outside [2, 4].
    """
    _check_classes(num_classes)
    if n < 1:
        raise ValueError(f"n: expected an int >= 1, got {n}")
    if size < 8:
        raise ValueError(f"size: expected an int >= 8, got {size}")
    lo, hi = size // 4, size * 5 // 8
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    labels = torch.zeros(n, size, size, dtype=torch.int64)
    # painting order per sample: a random permutation of the classes 1..K-1
    order = torch.argsort(torch.rand(n, num_classes - 1, generator=generator), dim=1) + 1
    for j in range(num_classes - 1):
        cls = order[:, j]  # [n]
        h = torch.randint(lo, hi + 1, (n,), generator=generator)
        w = torch.randint(lo, hi + 1, (n,), generator=generator)
        top = (torch.rand(n, generator=generator) * (size - h + 1)).floor().long()
        left = (torch.rand(n, generator=generator) * (size - w + 1)).floor().long()
        ellipse = torch.rand(n, generator=generator) < 0.5
        t, lft = top[:, None, None], left[:, None, None]
        hh, ww = h[:, None, None], w[:, None, None]
        rect = (yy >= t) & (yy < t + hh) & (xx >= lft) & (xx < lft + ww)
        cy, cx = t + (hh - 1) / 2, lft + (ww - 1) / 2
        ell = ((yy - cy) / (hh / 2)) ** 2 + ((xx - cx) / (ww / 2)) ** 2 <= 1.0
        shape = torch.where(ellipse[:, None, None], ell, rect)
        labels = torch.where(shape, cls[:, None, None], labels)
    return labels


def render_images(
    labels: Tensor,
    *,
    num_classes: int = 4,
    noise_std: float = 0.15,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Paints each region with its class colour plus Gaussian texture noise.

    Args:
        labels: ``[B, H, W]`` class indices in [0, K − 1].
        num_classes: K in [2, 4].
        noise_std: Standard deviation of the i.i.d. per-pixel, per-channel noise (>= 0).
        generator: Source of randomness.

    Returns:
        ``[B, 3, H, W]`` float32 images in [-1, 1].

    Raises:
        TypeError, ValueError: On a bad label map or a negative ``noise_std``.
    """
    _check_classes(num_classes)
    check_label_maps(labels, num_classes)
    if not math.isfinite(noise_std) or noise_std < 0:
        raise ValueError(f"noise_std: expected a finite number >= 0, got {noise_std}")
    colours = PALETTE[:num_classes][labels].permute(0, 3, 1, 2)  # [B, 3, H, W]
    noise = torch.randn(colours.shape, generator=generator)
    return (colours + noise_std * noise).clamp(-1.0, 1.0)


def one_hot_condition(labels: Tensor, num_classes: int) -> Tensor:
    """The ControlNet condition: ``[B, K, H, W]`` float one-hot channels of a label map."""
    check_label_maps(labels, num_classes)
    return nn.functional.one_hot(labels.long(), num_classes).permute(0, 3, 1, 2).float()


class ConvSegmenter(nn.Module):
    """The reward model g: three 3×3/1×1 convolutions with ReLU, logits ``[B, K, H, W]``."""

    def __init__(self, num_classes: int = 4, width: int = 16) -> None:
        super().__init__()
        _check_classes(num_classes)
        self.num_classes = num_classes
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, num_classes, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``[B, K, H, W]`` of images ``[B, 3, H, W]``."""
        out: Tensor = self.net(x)
        return out


class DilatedSegmenter(nn.Module):
    """The oracle: a 5×5 convolution, a dilated 3×3 convolution, group norm and GELU — built
    differently from g so that the two do not share blind spots."""

    def __init__(self, num_classes: int = 4, width: int = 24) -> None:
        super().__init__()
        _check_classes(num_classes)
        self.num_classes = num_classes
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 5, padding=2),
            nn.GroupNorm(4, width),
            nn.GELU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2),
            nn.GELU(),
            nn.Conv2d(width, num_classes, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``[B, K, H, W]`` of images ``[B, 3, H, W]``."""
        out: Tensor = self.net(x)
        return out


class CorruptedSegmenter(nn.Module):
    """g with an input-dependent, high-frequency logit corruption (spec §4.3 option (a), [O]).

    ``logits_k(x) = g_k(x) + β · A · sin(ω · (w_k ⋆ x)_p)`` per class k and pixel p, where
    ``w_k`` is a fixed random 3×3×3 filter scaled to unit norm, A = ``amplitude`` (in logit
    units) and β = ``beta`` (the corruption level; 0 gives g itself). All parameters are frozen;
    the module stays differentiable with respect to its input.

    Args:
        base: The clean segmenter g (``[B, 3, H, W] -> [B, K, H, W]``).
        num_classes: K, the number of logit channels of ``base``.
        beta: Corruption level β >= 0.
        omega: Frequency ω > 0.
        amplitude: A > 0.
        seed: Seed of the random filters.

    Raises:
        ValueError: On a negative ``beta`` or a non-positive ``omega`` / ``amplitude``.
    """

    def __init__(
        self,
        base: nn.Module,
        *,
        num_classes: int,
        beta: float,
        omega: float = 300.0,
        amplitude: float = 4.0,
        seed: int = 1234,
    ) -> None:
        super().__init__()
        _check_classes(num_classes)
        if not math.isfinite(beta) or beta < 0:
            raise ValueError(f"beta: expected a finite number >= 0, got {beta}")
        if not (math.isfinite(omega) and omega > 0):
            raise ValueError(f"omega: expected a finite number > 0, got {omega}")
        if not (math.isfinite(amplitude) and amplitude > 0):
            raise ValueError(f"amplitude: expected a finite number > 0, got {amplitude}")
        self.base = base
        self.num_classes = num_classes
        self.beta, self.omega, self.amplitude = float(beta), float(omega), float(amplitude)
        gen = torch.Generator().manual_seed(seed)
        w = torch.randn(num_classes, 3, 3, 3, generator=gen)
        self.register_buffer("filters", w / w.flatten(1).norm(dim=1)[:, None, None, None])
        self.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        """Corrupted logits ``[B, K, H, W]`` of images ``[B, 3, H, W]``."""
        logits: Tensor = self.base(x)
        if self.beta == 0.0:
            return logits
        filters: Tensor = self.filters  # type: ignore[assignment]
        probe = nn.functional.conv2d(x, filters, padding=1)
        return logits + self.beta * self.amplitude * torch.sin(self.omega * probe)


def train_segmenter(
    model: nn.Module,
    *,
    num_classes: int,
    steps: int = 300,
    batch_size: int = 32,
    lr: float = 3e-3,
    noise_std: float | tuple[float, float] = 0.15,
    size: int = 16,
    seed: int = 0,
) -> nn.Module:
    """Fits a segmenter by cross-entropy on freshly drawn clean toy images, then freezes it.

    Args:
        model: ``[B, 3, H, W] -> [B, K, H, W]`` logits.
        num_classes: K.
        steps: Adam steps (>= 1).
        batch_size: Images per step (>= 1).
        lr: Adam learning rate (> 0).
        noise_std: The texture noise of the training images, or a ``(low, high)`` range drawn
            uniformly per image (a noise-robust segmenter, used for the oracle).
        size: Image side.
        seed: Seed of the data and of nothing else (initialise ``model`` under your own seed).

    Returns:
        ``model`` in eval mode with ``requires_grad`` off on every parameter.

    Raises:
        ValueError: On non-positive ``steps``, ``batch_size`` or ``lr``.
    """
    if steps < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(
            f"steps, batch_size, lr: expected >= 1, >= 1, > 0, got {steps}, {batch_size}, {lr}"
        )
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        labels = random_label_maps(batch_size, size=size, num_classes=num_classes, generator=gen)
        if isinstance(noise_std, tuple):
            std = noise_std[0] + (noise_std[1] - noise_std[0]) * torch.rand(
                batch_size, 1, 1, 1, generator=gen
            )
            clean = render_images(labels, num_classes=num_classes, noise_std=0.0)
            images = (clean + std * torch.randn(clean.shape, generator=gen)).clamp(-1.0, 1.0)
        else:
            images = render_images(
                labels, num_classes=num_classes, noise_std=noise_std, generator=gen
            )
        loss = nn.functional.cross_entropy(model(images), labels)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    model.eval()
    model.requires_grad_(False)
    return model


def segment(model: nn.Module, images: Tensor) -> Tensor:
    """Predicted label maps ``[B, H, W]`` (argmax of the logits), without gradients."""
    with torch.no_grad():
        logits: Tensor = model(images)
    return logits.argmax(dim=1)


def mean_iou(pred: Tensor, target: Tensor, num_classes: int) -> float:
    """Mean intersection-over-union over the classes present in ``pred`` or ``target``.

    IoU_k = |pred = k ∧ target = k| / |pred = k ∨ target = k|, pooled over the whole batch (the
    usual dataset-level mIoU); classes absent from both are skipped.

    Args:
        pred: ``[B, H, W]`` predicted classes.
        target: ``[B, H, W]`` true classes.
        num_classes: K.

    Returns:
        mIoU in [0, 1].

    Raises:
        ValueError: On different shapes or classes outside [0, K − 1].
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"pred, target: expected equal shapes, got {tuple(pred.shape)}, {tuple(target.shape)}"
        )
    check_label_maps(pred, num_classes, name="pred")
    check_label_maps(target, num_classes, name="target")
    ious = []
    for k in range(num_classes):
        p, t = pred == k, target == k
        union = int((p | t).sum())
        if union:
            ious.append(int((p & t).sum()) / union)
    return sum(ious) / len(ious)


def pixel_accuracy(pred: Tensor, target: Tensor) -> float:
    """Share of pixels whose predicted class equals the true one.

    Raises:
        ValueError: On different or empty shapes.
    """
    if pred.shape != target.shape or pred.numel() == 0:
        raise ValueError(
            f"pred, target: expected equal non-empty shapes, got {tuple(pred.shape)}, "
            f"{tuple(target.shape)}"
        )
    return float((pred == target).float().mean())
