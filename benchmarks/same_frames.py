"""Do two revisions make the same frames? Both built-in engines, on one process and on a LocalCluster.

    python benchmarks/same_frames.py REV_BEFORE [REV_AFTER]      # REV_AFTER: the working tree

Each revision is checked out into a temporary git worktree (the working tree is used as it is) and runs
the same tiny commands with one TensorFlow thread (floats deterministic): the lbfgs chain on 6 frames and
the keyframe engine on 12, each in one process and with ``--cluster local --workers 2``. Prints a table of
the frames' SHA-256 per command and revision and exits 1 if any frame differs, between the revisions or
between one process and the cluster. A refactor that must keep the frames (issue 26) runs this.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMON = ["--weights", "hed", "-q", "--iterations", "4"]
COMMANDS = {
    "lbfgs": ["--size", "64", "--frames", "1-6"],
    "keyframes": ["--engine", "keyframes", "--size", "96", "--keyframe-size", "48", "--frames", "1-12",
                  "--option", "keyframes.steps=20", "--option", "keyframes.patch=24"],
}
CLUSTER = ["--cluster", "local", "--workers", "2"]


def run(tree: Path, out: Path) -> dict[str, dict[str, str]]:
    env = {**os.environ, "PYTHONPATH": str(tree), "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
           "OMP_NUM_THREADS": "1", "NST_STATE_DIR": str(out / "state")}
    samples = ROOT / "samples"
    hashes = {}
    for name, args in COMMANDS.items():
        for where, more in (("one process", []), ("cluster", CLUSTER)):
            folder = out / f"{name}-{where.replace(' ', '-')}"
            command = [sys.executable, "-m", "nst_plugin", "video", str(samples / "street.avi"), "-s",
                       str(samples / "starry_night.jpg"), "-o", str(folder), *COMMON, *args, *more]
            done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=out)
            if done.returncode != 0:
                raise SystemExit(f"{tree}: {name} on {where} failed:\n{done.stderr[-2000:]}")
            hashes[f"{name}, {where}"] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                                          for p in sorted(folder.glob("frame_*.png"))}
    return hashes


def tree_of(revision: str | None, scratch: Path) -> Path:
    if revision is None:
        return ROOT
    tree = scratch / f"tree-{revision.replace('/', '_')}"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(tree), revision], check=True,
                   capture_output=True)
    return tree


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after", nargs="?")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="nst-same-frames-"))
    trees = {}
    try:
        results = {}
        for label, revision in (("before", args.before), ("after", args.after)):
            trees[label] = tree_of(revision, scratch)
            (scratch / label).mkdir()
            results[label] = run(trees[label], scratch / label)
        differ = 0
        print(f"| command | frames | {args.before} | {args.after or 'working tree'} | one process = cluster |")
        print("| --- | ---: | --- | --- | --- |")
        for command in results["before"]:
            before, after = results["before"][command], results["after"][command]
            same = before == after
            name = command.split(",")[0]
            spread = results["after"][f"{name}, cluster"] == results["after"][f"{name}, one process"]
            differ += (not same) + (not spread)
            digest = hashlib.sha256("".join(after.values()).encode()).hexdigest()[:12]
            print(f"| {command} | {len(after)} | {'same' if same else 'DIFFERENT'} | {digest} | "
                  f"{'yes' if spread else 'NO'} |")
        return 1 if differ else 0
    finally:
        for label, tree in trees.items():
            if tree != ROOT:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
