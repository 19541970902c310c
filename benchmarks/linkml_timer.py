"""Timing helper for package_vs_linkml.py; it runs INSIDE benchmarks/.venv-linkml, never in our venv.

LinkML lives in its own virtual environment so that its pins never meet ours, hence this separate
script: it loads the LinkML schema once, validates each file the way `linkml validate` does (the
JsonschemaValidationPlugin with closed=True, the YAML loader for the file), once untimed to warm the
generated JSON Schema cache and then --repeat times timed, and prints one JSON object on stdout:

    {"linkml": "<version>", "first_call_ms": <float>,
     "files": {"<path>": {"errors": ["<message>", ...], "ms": [<float>, ...]}}}

first_call_ms is the schema load plus the first validation of the first file (JSON Schema generated).
"""

from __future__ import annotations

import argparse
import json
import time
from importlib.metadata import version

from linkml.validator import Validator
from linkml.validator.loaders import default_loader_for_file
from linkml.validator.plugins import JsonschemaValidationPlugin
from linkml.validator.report import Severity
from linkml_runtime.linkml_model import SchemaDefinition
from linkml_runtime.loaders import yaml_loader


def errors(validator: Validator, path: str, target_class: str) -> list[str]:
    """linkml's ERROR messages for one file; a file that does not load is one error (the CLI crashes)."""
    try:
        results = validator.iter_results_from_source(default_loader_for_file(path), target_class)
        return [r.message for r in results if r.severity is Severity.ERROR]
    except Exception as exc:  # noqa: BLE001 - whatever linkml raises is its verdict on the file
        return [f"{type(exc).__name__}: {exc}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--target-class", required=True)
    parser.add_argument("--repeat", type=int, required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    start = time.perf_counter()
    schema = yaml_loader.load(args.schema, SchemaDefinition)
    validator = Validator(schema, validation_plugins=[JsonschemaValidationPlugin(closed=True)])
    errors(validator, args.files[0], args.target_class)
    first_call_ms = (time.perf_counter() - start) * 1000
    report = {}
    for path in args.files:
        found = errors(validator, path, args.target_class)  # warm-up, untimed
        timings = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            errors(validator, path, args.target_class)
            timings.append((time.perf_counter() - start) * 1000)
        report[path] = {"errors": found, "ms": timings}
    print(json.dumps({"linkml": version("linkml"), "first_call_ms": first_call_ms, "files": report}))


if __name__ == "__main__":
    main()
