"""Parse argument lists with SGLang's own server-argument parser (runs in .venv-sglang).

    .venv-sglang/bin/python tests/sglang/sglang_parse.py ARGV_LISTS_JSON

ARGV_LISTS_JSON is a JSON list of argument lists. Each is parsed by an argparse parser built
with ``ServerArgs.add_cli_args`` (what ``sglang.launch_server`` uses), after ``--model-path``;
the result line ``RESULT <json>`` holds, per list, either the parsed values of every argument
(as JSON-able types) or the parser's error message.
"""

from __future__ import annotations

import argparse
import json
import sys

from sglang.srt.server_args import ServerArgs


class ParseError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print and exit
        raise ParseError(message)


def parse(argv: list[str]) -> dict:
    parser = Parser()
    ServerArgs.add_cli_args(parser)
    try:
        namespace = parser.parse_args(["--model-path", "/opt/qwen3vl/model", *argv])
    except ParseError as exc:
        return {"error": str(exc)}
    return {"values": json.loads(json.dumps(vars(namespace), default=repr))}


if __name__ == "__main__":
    print("RESULT " + json.dumps([parse(argv) for argv in json.loads(sys.argv[1])]))
