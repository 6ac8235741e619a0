"""Reads the Prometheus text format on standard input with the Prometheus project's own parser
(prometheus_client) and prints what it read as JSON: one object per family, with its samples.
The metrics test (tests/metrics.test.mjs) runs it; a line the parser refuses fails it."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = [
    {
        "name": f.name,
        "type": f.type,
        "help": f.documentation,
        "samples": [
            {"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples
        ],
    }
    for f in text_string_to_metric_families(sys.stdin.read())
]
json.dump(families, sys.stdout)
