"""Help that teaches: examples in pointea-predict, a description for every pointea-data option."""

from __future__ import annotations

import argparse

from pointea.cli.data import build_parser as data_parser
from pointea.cli.predict import build_parser as predict_parser


def test_predict_help_has_examples():
    text = predict_parser().format_help()
    assert "examples:" in text and "--html predictions.html" in text
    assert text.count("pointea-predict ") >= 5


def test_every_pointea_data_option_is_described():
    parser = data_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        for action in sub._actions:
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)
