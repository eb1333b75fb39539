"""Layers with Keras' names, arguments and defaults."""

from __future__ import annotations

from rnnkit.layers.activation import Activation
from rnnkit.layers.base import Layer
from rnnkit.layers.dense import Dense
from rnnkit.layers.dropout import Dropout
from rnnkit.layers.embedding import Embedding
from rnnkit.layers.gru import GRU
from rnnkit.layers.input_layer import Input, InputLayer
from rnnkit.layers.lstm import LSTM
from rnnkit.layers.masking import Masking
from rnnkit.layers.recurrent import Recurrent
from rnnkit.layers.repeat_vector import RepeatVector
from rnnkit.layers.simple_rnn import SimpleRNN
from rnnkit.layers.wrappers import Bidirectional, TimeDistributed

#: every layer class a saved model may name, by class name
LAYER_CLASSES = {cls.__name__: cls for cls in (InputLayer, Dense, Activation, Dropout, SimpleRNN, LSTM, GRU,
                                                  Embedding, Masking, RepeatVector, TimeDistributed, Bidirectional)}

__all__ = ["Layer", "Input", "InputLayer", "Dense", "Activation", "Dropout", "Recurrent", "SimpleRNN", "LSTM", "GRU",
           "Embedding", "Masking", "RepeatVector", "TimeDistributed", "Bidirectional",
           "LAYER_CLASSES"]
