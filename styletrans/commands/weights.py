"""``styletrans weights``: list and fetch the named VGG weight sources."""

from __future__ import annotations

import argparse

from styletrans.weights import caffe_cache_file, fetch_caffe, list_sources, load_weights


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("weights", help="list or fetch loss-network weights")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("list", help="show every weight source and whether it is ready").set_defaults(handler=run_list)
    fetch = sub.add_parser("fetch", help="convert/download a source into the cache")
    fetch.add_argument("source", nargs="?", default="vgg16-caffe")
    fetch.set_defaults(handler=run_fetch)


def run_list(args: argparse.Namespace) -> int:
    rows = [(s.name, s.status, s.description) for s in list_sources()]
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    for name, status, description in rows:
        print(f"{name:<{widths[0]}}  {status:<{widths[1]}}  {description}")
    print(f"cache: {caffe_cache_file().parent}")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    if args.source == "vgg16-caffe":
        print(f"vgg16-caffe ready: {fetch_caffe()}")
    else:
        weights = load_weights(args.source)  # torchvision downloads into torch.hub's cache
        print(f"{weights.source} ready ({weights.arch}, {len(weights.state_dict) // 2} conv layers)")
    return 0
