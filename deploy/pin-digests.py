#!/usr/bin/env python3
"""Pin the images driftbot is built from and deployed as by digest, so that a tag moved in a
registry changes nothing here until this script is run again and its change reviewed.

    python3 deploy/pin-digests.py base [IMAGE:TAG]
        The multi-platform digest of the Dockerfile's base image tag (default: the tag the
        Dockerfile names now), written into the Dockerfile's `ARG PYTHON_IMAGE=TAG@sha256:...`.
    python3 deploy/pin-digests.py image REPOSITORY:TAG | sha256:...
        The digest of driftbot's pushed image (looked up, or as given), written into the Helm
        chart (values.yaml image.digest) and the Kustomize base (images[0].digest).

A digest is looked up in the registry with the first tool found: `crane digest`,
`docker buildx imagetools inspect`, or `skopeo inspect --raw` (the SHA-256 of the manifest it
prints). Each answers with the digest of the tag's image index, which covers every platform.
Needs only Python 3; `--root DIR` edits a copy of the repository instead of this one.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
BASE_ARG = re.compile(r"^ARG PYTHON_IMAGE=(?P<ref>\S+)$", re.MULTILINE)


class PinError(Exception):
    """Nothing was written: the reason, for the person running the script."""


def lookup(ref: str) -> str:
    """The digest of `ref`'s manifest (the image index of a multi-platform tag)."""
    if shutil.which("crane"):
        out = _run(["crane", "digest", ref])
    elif shutil.which("docker") and _run_ok(["docker", "buildx", "version"]):
        out = _run(
            ["docker", "buildx", "imagetools", "inspect", ref, "--format", "{{.Manifest.Digest}}"]
        )
    elif shutil.which("skopeo"):
        raw = subprocess.run(
            ["skopeo", "inspect", "--raw", f"docker://{ref}"], capture_output=True, check=False
        )
        if raw.returncode != 0:
            raise PinError(f"skopeo could not read {ref}: {raw.stderr.decode(errors='replace')}")
        out = "sha256:" + hashlib.sha256(raw.stdout).hexdigest()
    else:
        raise PinError(
            "no registry client found (crane, docker buildx or skopeo): install one, or give "
            "the digest yourself"
        )
    digest = out.strip()
    if not DIGEST.match(digest):
        raise PinError(f"the registry client answered {digest!r} for {ref}, not a sha256 digest")
    return digest


def _run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PinError(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
    return done.stdout


def _run_ok(cmd: list[str]) -> bool:
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def pin_base(root: Path, tag: str | None, digest: str | None) -> str:
    dockerfile = root / "Dockerfile"
    text = dockerfile.read_text()
    found = BASE_ARG.search(text)
    if found is None:
        raise PinError("the Dockerfile has no `ARG PYTHON_IMAGE=...` line")
    tag = tag or found["ref"].split("@", 1)[0]
    digest = digest or lookup(tag)
    line = f"ARG PYTHON_IMAGE={tag}@{digest}"
    dockerfile.write_text(text[: found.start()] + line + text[found.end() :])
    return line


def pin_image(root: Path, digest: str) -> list[str]:
    values = root / "deploy" / "helm" / "driftbot" / "values.yaml"
    text = values.read_text()
    image_block = re.compile(r"^(image:\n(?:(?:  .*)?\n)*?  digest: )(\S*)$", re.MULTILINE)
    if not image_block.search(text):
        raise PinError(f"{values}: no image.digest key")
    values.write_text(image_block.sub(lambda m: m[1] + digest, text, count=1))

    kustomization = root / "deploy" / "kustomize" / "base" / "kustomization.yaml"
    text = kustomization.read_text()
    entry = re.compile(
        r"^(images:\n  - name: driftbot\n(?:    .*\n)*?)(    digest: \S+\n)?(?=\S|\Z)", re.MULTILINE
    )
    if not entry.search(text):
        raise PinError(f"{kustomization}: no images entry for driftbot")
    kustomization.write_text(entry.sub(lambda m: m[1] + f"    digest: {digest}\n", text, count=1))
    return [str(values), str(kustomization)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    sub = parser.add_subparsers(dest="what", required=True)
    base = sub.add_parser("base", help="the Dockerfile's base image")
    base.add_argument("tag", nargs="?", help="IMAGE:TAG (default: the Dockerfile's)")
    base.add_argument("--digest", help="sha256:... to write instead of looking it up")
    image = sub.add_parser("image", help="driftbot's own image, in the chart and Kustomize")
    image.add_argument("ref", help="REPOSITORY:TAG to look up, or the sha256:... digest itself")
    args = parser.parse_args(argv)
    try:
        if args.what == "base":
            if args.digest and not DIGEST.match(args.digest):
                raise PinError(f"{args.digest} is not a sha256:<64 hex> digest")
            print(pin_base(args.root, args.tag, args.digest))
        else:
            digest = args.ref if args.ref.startswith("sha256:") else lookup(args.ref)
            if not DIGEST.match(digest):
                raise PinError(f"{digest} is not a sha256:<64 hex> digest")
            for path in pin_image(args.root, digest):
                print(f"{path}: {digest}")
    except PinError as exc:
        print(f"pin-digests: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
