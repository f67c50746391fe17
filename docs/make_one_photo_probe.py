"""Can the network paint at all? Fitted to one photo: models/one_photo_probe.jpg.

    python docs/make_one_photo_probe.py [--checkpoint train/resume/multistyle7.ckpt] [--photo chelsea] \\
        [--style starry_night] [--steps 200] [--extra relu2_1=0.003]

The network is trained further (Adam, rate 1e-3) on the one photo alone, under its own training loss plus
the ``--extra`` content layers, once without and once with its stability term (the weight the checkpoint
recorded). Columns: the photo; the network; after ``--steps`` steps without the stability term; with it;
Gatys from noise under the same loss (150 L-BFGS iterations, as in docs/make_loss_probe.py). Each
result's loss is printed. A network that reaches the painted look on one photo has the capacity for it
there; that it does not on photos it was not fitted to is then a matter of training (models/README.md).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch
from make_loss_probe import add_extra_argument, training_loss  # docs/, the script's own folder

from styletrans.assets import resolve_image
from styletrans.images import load_image, tensor_to_pil
from styletrans.losses import PerceptualLoss
from styletrans.models.checkpoint import load_transformer
from styletrans.models.transformer import TransformerNet
from styletrans.optimize.gatys import run_gatys
from styletrans.training.stability import random_shift, shift_consistency, shift_noise

OUTPUT = Path(__file__).resolve().parents[1] / "models" / "one_photo_probe.jpg"


def fit(network: TransformerNet, photo: torch.Tensor, style_index: int, loss: PerceptualLoss, steps: int,
        shift_weight: float, shift_std: float) -> torch.Tensor:
    """The output on ``photo`` of a copy of ``network`` after ``steps`` Adam steps on it alone."""
    net = copy.deepcopy(network).train()
    style = torch.tensor([style_index])
    targets = loss.content_targets(photo)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for step in range(steps):
        output = net(photo, style)
        total = loss(output, targets).total
        if shift_weight:
            shift = random_shift(step)
            noise = shift_noise(step, photo[..., shift[0]:, shift[1]:], shift_std)
            total = total + shift_weight * shift_consistency(net, photo, output, shift, style, noise)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    with torch.no_grad():
        return net(photo, style).clamp(0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=Path("train/resume/multistyle7.ckpt"))
    parser.add_argument("--photo", default="chelsea")
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--steps", type=int, default=200)
    add_extra_argument(parser)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    extra = dict(args.extra)
    net, metadata = load_transformer(args.checkpoint)
    hparams, index = metadata["training"], metadata["styles"].index(args.style)
    photo = load_image(resolve_image(args.photo, "photos"), args.size)[None]
    style = load_image(resolve_image(args.style, "styles"), hparams["style_size"])[None]
    settings = training_loss(hparams, args.style, extra, "noise", 150)
    loss = settings.build_loss("cpu")
    loss.set_style(style)
    targets = loss.content_targets(photo)
    with torch.no_grad():
        columns = {"network": net(photo, torch.tensor([index])).clamp(0, 1)}
    columns["fitted"] = fit(net, photo, index, loss, args.steps, 0.0, 0.0)
    columns["fitted, stability term"] = fit(net, photo, index, loss, args.steps,
                                            hparams["shift_weight"], hparams.get("shift_noise", 0.0))
    columns["Gatys from noise"] = run_gatys(photo, style, settings, progress=False).image
    with torch.no_grad():
        for name, image in columns.items():
            terms = loss(image, targets)
            print(f"{name}: total {float(terms.total):.3g}, content {float(terms.content):.3g}, "
                  f"style {float(terms.style):.3g}, tv {float(terms.tv):.3g}")
    tensor_to_pil(torch.cat([photo, *columns.values()], -1)[0]).save(args.output, quality=90)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
