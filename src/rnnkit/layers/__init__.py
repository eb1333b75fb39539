"""Layers with Keras' names, arguments and defaults."""

from __future__ import annotations

from rnnkit.layers.activation import Activation
from rnnkit.layers.attention import AdditiveAttention, Attention
from rnnkit.layers.base import Layer
from rnnkit.layers.conv import Conv1D
from rnnkit.layers.dense import Dense
from rnnkit.layers.dropout import Dropout
from rnnkit.layers.embedding import Embedding
from rnnkit.layers.gru import GRU
from rnnkit.layers.gru_cell import GRUCell
from rnnkit.layers.input_layer import Input, InputLayer
from rnnkit.layers.lstm import LSTM
from rnnkit.layers.lstm_cell import LSTMCell
from rnnkit.layers.masking import Masking
from rnnkit.layers.merge import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract
from rnnkit.layers.normalization import BatchNormalization, LayerNormalization
from rnnkit.layers.pooling import GlobalAveragePooling1D, GlobalMaxPooling1D
from rnnkit.layers.pooling1d import AveragePooling1D, MaxPooling1D
from rnnkit.layers.recurrent import Recurrent
from rnnkit.layers.repeat_vector import RepeatVector
from rnnkit.layers.reshaping import Flatten, Permute, Reshape
from rnnkit.layers.rnn import RNN
from rnnkit.layers.simple_rnn import SimpleRNN
from rnnkit.layers.simple_rnn_cell import SimpleRNNCell
from rnnkit.layers.stacked_rnn_cells import StackedRNNCells
from rnnkit.layers.string_lookup import StringLookup
from rnnkit.layers.text_vectorization import TextVectorization
from rnnkit.layers.wrappers import Bidirectional, TimeDistributed

#: every layer class a saved model may name, by class name (nothing else can be built from a file)
LAYER_CLASSES = {cls.__name__: cls for cls in (
    InputLayer, Dense, Activation, Dropout, Embedding, Masking, RepeatVector,
    SimpleRNN, LSTM, GRU, RNN, SimpleRNNCell, LSTMCell, GRUCell, StackedRNNCells, TimeDistributed, Bidirectional,
    Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum, Dot,
    Attention, AdditiveAttention,
    Reshape, Flatten, Permute, GlobalAveragePooling1D, GlobalMaxPooling1D,
    LayerNormalization, BatchNormalization,
    Conv1D, MaxPooling1D, AveragePooling1D,
)}

__all__ = ["Layer", "Input", "InputLayer", "Dense", "Activation", "Dropout", "Embedding", "Masking", "RepeatVector",
           "Recurrent", "SimpleRNN", "LSTM", "GRU", "RNN", "SimpleRNNCell", "LSTMCell", "GRUCell", "StackedRNNCells",
           "TimeDistributed", "Bidirectional",
           "Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot",
           "Attention", "AdditiveAttention",
           "Reshape", "Flatten", "Permute", "GlobalAveragePooling1D", "GlobalMaxPooling1D",
           "LayerNormalization", "BatchNormalization",
           "Conv1D", "MaxPooling1D", "AveragePooling1D",
           "StringLookup", "TextVectorization",   # preprocessing on Python strings before fit: not in saved models
           "LAYER_CLASSES"]
