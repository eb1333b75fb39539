"""Layers with Keras' names, arguments and defaults."""

from __future__ import annotations

from rnnkit.layers.activation import Activation
from rnnkit.layers.base import Layer
from rnnkit.layers.dense import Dense
from rnnkit.layers.dropout import Dropout
from rnnkit.layers.gru import GRU
from rnnkit.layers.input_layer import Input, InputLayer
from rnnkit.layers.lstm import LSTM
from rnnkit.layers.recurrent import Recurrent
from rnnkit.layers.simple_rnn import SimpleRNN

#: every layer class a saved model may name, by class name
LAYER_CLASSES = {cls.__name__: cls for cls in (InputLayer, Dense, Activation, Dropout, SimpleRNN, LSTM, GRU)}

__all__ = ["Layer", "Input", "InputLayer", "Dense", "Activation", "Dropout", "Recurrent", "SimpleRNN", "LSTM", "GRU",
           "LAYER_CLASSES"]
