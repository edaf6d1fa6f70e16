"""Analyses of a catalogue and a model: the label-noise audit (`audit`), which products to
label next (`active`), and why a model predicted what it did (`explain`)."""
