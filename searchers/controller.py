"""NASNet-style RL controller: an LSTM policy over the space's decision sequence.

The policy (Zoph et al. 2018; one LSTM layer of ``lstm_units`` cells, as NASNet) emits the
space's decisions in order (``space.decision_sizes()``: per block input_a, input_b, op_a, op_b
[, combine], normal cell then reduction cell). It is autoregressive: the choice made at step t
is embedded and fed as the input of step t+1; a start token opens the sequence. Every step has a
softmax over its own number of choices: one Dense head per distinct decision size, shared by the
steps of that size (the LSTM state tells the steps apart), padded and masked to a common width.
The token of a choice is ``1 + offset(step) + choice``, so a token says both which decision was
made and where in the sequence it was.

Training is policy gradient on the scores told back:

- REINFORCE: loss = -A * log pi(decisions) - entropy_weight * H(pi), with A the score minus an
  exponential-moving-average baseline (``baseline_decay``), divided by a moving standard
  deviation of the scores, so ``entropy_weight`` and ``learning_rate`` mean the same whatever
  the scale of the score (accuracies differ by hundredths; synthetic scores by tenths);
- PPO (``algorithm="ppo"``, as NASNet used): the clipped surrogate
  min(r A, clip(r, 1 - ppo_clip, 1 + ppo_clip) A) with r = pi(d) / pi_old(d), where pi_old is the
  policy that proposed the trial, over ``ppo_epochs`` passes per batch.

Scores arrive out of order from asynchronous workers: each pending trial keeps the decisions and
log-probability it was proposed with; completed trials queue in arrival order and every
``batch_size`` of them make one update. A trial proposed under an older policy is still used
(REINFORCE treats it as on-policy; PPO's ratio corrects for it). Failed trials are dropped: they
carry no reward, and a made-up low one would teach the policy about failures, not about accuracy.
Observed results (``observe``: a warm start from another run) join the same queue, with their
decisions from ``space.encode`` and their log-probability under the policy of the moment: they
move the baseline and update the policy like results of its own proposals.

Backends: the policy is a Keras model and the update is ``train_on_batch`` with the loss in
``compute_loss`` written in ``keras.ops``, so Keras computes the gradients with whichever backend
is active (tested with TensorFlow, the project's backend, and with PyTorch, which trains a
supernet on the controller's paths). Sampling does not call Keras: a numpy
forward pass of the same weights samples a proposal in about a millisecond, where a Keras call
costs more than the whole numpy pass.

Determinism: weights are initialized from a numpy generator seeded by ``seed``, sampling uses the
searcher's generator, and ``state_dict`` stores the policy and Adam weights as base64 ``.npy``
(exact float32), so a restored controller proposes what the uninterrupted one would have.
"""

from __future__ import annotations

import base64
import io

import numpy as np

from search_space import Genotype, SearchSpace

from .base import BaseSearcher, Pending

# Logit given to the padded (impossible) choices of a step. Finite, so 0 * NEG is 0 in the
# entropy; large, so exp(NEG - logsumexp) is exactly 0 in float32.
NEG = -1e9
# Samples an ask draws from the policy before it explores around the last one by mutation: a
# converged policy keeps sampling genotypes it already proposed.
POLICY_DRAWS = 20
# Floor of the moving score variance that advantages are divided by.
VAR_EPSILON = 1e-8


def _encode_array(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _decode_array(text: str) -> np.ndarray:
    return np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False)


class _SequenceLayout:
    """Where each decision sits: sizes, token offsets and the per-size step masks."""

    def __init__(self, sizes: list[int]):
        if not sizes or min(sizes) < 1:
            raise ValueError(f"decision_sizes must be a non-empty list of positive ints, got {sizes}")
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.length = len(sizes)
        self.width = int(self.sizes.max())
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.vocab = 1 + int(self.sizes.sum())
        self.head_sizes = sorted({int(s) for s in sizes})

    def tokens(self, decisions: np.ndarray) -> np.ndarray:
        """Input tokens (N, T) for decision sequences (N, T): start token, then previous choices."""
        decisions = np.atleast_2d(decisions)
        tokens = np.zeros_like(decisions)
        tokens[:, 1:] = 1 + self.offsets[:-1] + decisions[:, :-1]
        return tokens


def _build_policy(layout: _SequenceLayout, units: int, algorithm: str, entropy_weight: float, ppo_clip: float):
    """The Keras policy: tokens (N, T) -> logits (N, T, width), with the policy-gradient loss."""
    import keras
    from keras import ops

    # tensors, not numpy arrays: on PyTorch a tensor times an array tries to make the tensor numpy
    step_masks = {
        s: ops.convert_to_tensor((layout.sizes == s).astype("float32").reshape(1, layout.length, 1))
        for s in layout.head_sizes
    }

    class Policy(keras.Model):
        def __init__(self):
            super().__init__(name="controller_policy")
            self.embedding = keras.layers.Embedding(layout.vocab, units, name="embedding")
            self.step_embedding = keras.layers.Embedding(layout.length, units, name="step_embedding")
            self.lstm = keras.layers.LSTM(units, return_sequences=True, name="lstm")
            self.heads = [keras.layers.Dense(s, name=f"head_{s}") for s in layout.head_sizes]

        def call(self, tokens):
            steps = self.step_embedding(ops.arange(layout.length))  # (T, units), broadcast over N
            hidden = self.lstm(self.embedding(tokens) + steps)
            logits = None
            for size, head in zip(layout.head_sizes, self.heads):
                part = head(hidden)
                if size < layout.width:
                    part = ops.pad(part, [[0, 0], [0, 0], [0, layout.width - size]], constant_values=NEG)
                part = part * step_masks[size]
                logits = part if logits is None else logits + part
            return logits

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            # tensors on every backend (PyTorch's train_on_batch hands the targets over as numpy)
            decisions, advantages, old_log_probs = (ops.convert_to_tensor(t) for t in y)
            log_probs_all = ops.log_softmax(y_pred, axis=-1)
            chosen = ops.one_hot(decisions, layout.width)
            log_probs = ops.sum(chosen * log_probs_all, axis=(1, 2))
            entropy = -ops.sum(ops.exp(log_probs_all) * log_probs_all, axis=(1, 2))
            if algorithm == "ppo":
                ratio = ops.exp(log_probs - old_log_probs)
                clipped = ops.clip(ratio, 1.0 - ppo_clip, 1.0 + ppo_clip)
                objective = ops.minimum(ratio * advantages, clipped * advantages)
            else:
                objective = advantages * log_probs
            return -ops.mean(objective + entropy_weight * entropy)

    return Policy()


class _NumpyPolicy:
    """The Keras policy's forward pass in numpy (float64), for fast sampling.

    The input projections of every token and every step (embedding @ kernel) are precomputed:
    table lookups instead of a matrix product per step.
    """

    def __init__(self, layout: _SequenceLayout, model):
        self.layout = layout
        embeddings = np.asarray(model.embedding.get_weights()[0], dtype=np.float64)
        step_embeddings = np.asarray(model.step_embedding.get_weights()[0], dtype=np.float64)
        kernel, recurrent, bias = (np.asarray(w, dtype=np.float64) for w in model.lstm.get_weights())
        self.token_projection = embeddings @ kernel  # (vocab, 4 units)
        self.step_projection = step_embeddings @ kernel + bias  # (T, 4 units)
        self.recurrent = recurrent
        self.units = u = recurrent.shape[0]
        # sigmoid(x) = (1 + tanh(x / 2)) / 2: one tanh over all four gates per step.
        self.gate_scale = np.concatenate([np.full(2 * u, 0.5), np.ones(u), np.full(u, 0.5)])
        heads = {
            size: tuple(np.asarray(w, dtype=np.float64) for w in head.get_weights())
            for size, head in zip(layout.head_sizes, model.heads)
        }
        self.step_heads = [heads[int(size)] for size in layout.sizes]

    def run(self, rng: np.random.Generator | None = None, forced=None) -> tuple[list[int], float, np.ndarray]:
        """Sample a decision sequence with ``rng`` (or score ``forced`` decisions).

        Returns (decisions, log-probability of the sequence, logits (T, width)); the logits are
        for tests that compare this pass with the Keras model.
        """
        layout, u = self.layout, self.units
        h = np.zeros(u)
        c = np.zeros(u)
        token = 0
        decisions: list[int] = []
        log_prob = 0.0
        all_logits = np.full((layout.length, layout.width), NEG)
        uniforms = rng.random(layout.length) if forced is None else None
        for t, (weight, head_bias) in enumerate(self.step_heads):
            z = self.token_projection[token] + self.step_projection[t] + h @ self.recurrent
            z = np.tanh(z * self.gate_scale)
            gates = 0.5 + 0.5 * z  # sigmoids of i, f, (unused), o
            c = gates[u : 2 * u] * c + gates[:u] * z[2 * u : 3 * u]
            h = gates[3 * u :] * np.tanh(c)
            logits = h @ weight + head_bias
            size = logits.shape[0]
            all_logits[t, :size] = logits
            shifted = logits - logits.max()
            exp = np.exp(shifted)
            total = exp.sum()
            if forced is None:
                choice = min(int(np.searchsorted(np.cumsum(exp), uniforms[t] * total, side="right")), size - 1)
            else:
                choice = int(forced[t])
            log_prob += float(shifted[choice] - np.log(total))
            decisions.append(choice)
            token = 1 + int(layout.offsets[t]) + choice
        return decisions, log_prob, all_logits


class Controller(BaseSearcher):
    """RL controller; see the module docstring.

    Defaults are set for budgets of a few hundred evaluations (see BENCHMARKS.md; checked on
    NAS-Bench-201's table too, where changing any one of them did no better); NASNet's
    20,000-sample runs used a smaller learning rate.
    """

    name = "controller"
    uses_keras = True  # constructing one builds a Keras model (seconds; loads TensorFlow)

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        lstm_units: int = 100,
        learning_rate: float = 0.01,
        entropy_weight: float = 0.1,
        baseline_decay: float = 0.95,
        batch_size: int = 3,
        algorithm: str = "reinforce",
        ppo_clip: float = 0.2,
        ppo_epochs: int = 4,
        max_trials: int | None = None,
    ):
        if algorithm not in ("reinforce", "ppo"):
            raise ValueError(f"algorithm must be 'reinforce' or 'ppo', got {algorithm!r}")
        if lstm_units < 1:
            raise ValueError(f"lstm_units must be >= 1, got {lstm_units}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0.0 <= baseline_decay < 1.0:
            raise ValueError(f"baseline_decay must be in [0, 1), got {baseline_decay}")
        if ppo_epochs < 1:
            raise ValueError(f"ppo_epochs must be >= 1, got {ppo_epochs}")
        super().__init__(space, seed=seed, max_trials=max_trials)
        self.lstm_units = int(lstm_units)
        self.learning_rate = float(learning_rate)
        self.entropy_weight = float(entropy_weight)
        self.baseline_decay = float(baseline_decay)
        self.batch_size = int(batch_size)
        self.algorithm = algorithm
        self.ppo_clip = float(ppo_clip)
        self.ppo_epochs = int(ppo_epochs)

        self._layout = _SequenceLayout(list(space.decision_sizes()))
        self._model, self._optimizer = self._build_model()
        self._numpy_policy = _NumpyPolicy(self._layout, self._model)
        self._baseline: float | None = None  # moving average of the scores
        self._score_var: float | None = None  # moving variance of the scores
        self._completed: list[dict] = []  # told, not yet trained on: decisions, log_prob, score
        self._num_updates = 0

    def config(self) -> dict:
        return {
            "lstm_units": self.lstm_units,
            "learning_rate": self.learning_rate,
            "entropy_weight": self.entropy_weight,
            "baseline_decay": self.baseline_decay,
            "batch_size": self.batch_size,
            "algorithm": self.algorithm,
            "ppo_clip": self.ppo_clip,
            "ppo_epochs": self.ppo_epochs,
        }

    @property
    def num_updates(self) -> int:
        """Policy-gradient updates made so far (one per ``batch_size`` scores)."""
        return self._num_updates

    # ----------------------------------------------------------------- model

    def _build_model(self):
        import keras

        model = _build_policy(
            self._layout, self.lstm_units, self.algorithm, self.entropy_weight, self.ppo_clip
        )
        model(np.zeros((1, self._layout.length), dtype="int32"))  # build the weights
        # Uniform(-0.1, 0.1) as NASNet/ENAS, drawn from numpy so the initial policy depends on
        # ``seed`` alone (not on Keras's global seed); head biases 0 so it starts near uniform.
        init_rng = np.random.default_rng((self.seed, 1))
        weights = [init_rng.uniform(-0.1, 0.1, size=w.shape).astype("float32") for w in model.get_weights()]
        for head in model.heads:
            index = next(k for k, w in enumerate(model.weights) if w is head.bias)
            weights[index] = np.zeros_like(weights[index])
        model.set_weights(weights)
        optimizer = keras.optimizers.Adam(learning_rate=self.learning_rate)
        optimizer.build(model.trainable_variables)
        # XLA is slower on the CPU for this small a model and gains nothing elsewhere.
        model.compile(optimizer=optimizer, jit_compile=False)
        return model, optimizer

    def _train(self, batch: list[dict]) -> None:
        scores = np.asarray([item["score"] for item in batch], dtype=np.float64)
        if self._baseline is None:
            self._baseline = float(scores.mean())
            self._score_var = float(scores.var())
        advantages = (scores - self._baseline) / np.sqrt(self._score_var + VAR_EPSILON)
        decay = self.baseline_decay
        for score in scores:  # West's exponentially weighted mean and variance
            delta = float(score) - self._baseline
            self._baseline += (1.0 - decay) * delta
            self._score_var = decay * (self._score_var + (1.0 - decay) * delta * delta)

        decisions = np.asarray([item["decisions"] for item in batch], dtype="int32")
        old_log_probs = np.asarray([item["log_prob"] for item in batch], dtype="float32")
        tokens = self._layout.tokens(decisions).astype("int32")
        targets = (decisions, advantages.astype("float32"), old_log_probs)
        for _ in range(self.ppo_epochs if self.algorithm == "ppo" else 1):
            self._model.train_on_batch(tokens, targets)
        self._numpy_policy = _NumpyPolicy(self._layout, self._model)
        self._num_updates += 1

    # ----------------------------------------------------------------- searcher hooks

    def _propose(self) -> tuple[Genotype, dict] | None:
        policy = self._numpy_policy
        last: dict = {}

        def draw() -> Genotype:
            # The policy first; once it keeps repeating itself, neighbours of its last sample.
            draws = last.get("draws", 0)
            last["draws"] = draws + 1
            if draws < POLICY_DRAWS:
                decisions, log_prob, _ = policy.run(self._rng)
                genotype = self.space.decode(decisions)
                last.update(genotype=genotype, decisions=decisions, log_prob=log_prob, sampled=True)
                return genotype
            last["sampled"] = False
            return self.space.mutate(last["genotype"], self._rng)

        found = self._unique(draw)
        if found is None:
            return None
        genotype, origin = found
        if origin == "draw" and last["sampled"]:
            return genotype, {"origin": "policy", "decisions": last["decisions"], "log_prob": last["log_prob"]}
        decisions = [int(d) for d in self.space.encode(genotype)]
        _, log_prob, _ = policy.run(forced=decisions)
        return genotype, {
            "origin": "mutation" if origin == "draw" else origin,
            "decisions": decisions,
            "log_prob": log_prob,
        }

    def _on_result(self, trial_id: str, pending: Pending, score: float, metrics: dict | None) -> None:
        self._completed.append(
            {"decisions": pending.extra["decisions"], "log_prob": pending.extra["log_prob"], "score": score}
        )
        if len(self._completed) >= self.batch_size:
            batch = self._completed[: self.batch_size]
            self._completed = self._completed[self.batch_size :]
            self._train(batch)

    # Failed trials: nothing to do; their decisions leave with the pending entry.

    def _on_observe(self, trial_id: str, genotype: Genotype, score: float, metrics: dict | None) -> None:
        decisions = [int(d) for d in self.space.encode(genotype)]
        _, log_prob, _ = self._numpy_policy.run(forced=decisions)
        self._on_result(trial_id, Pending(genotype, {"decisions": decisions, "log_prob": log_prob}),
                        score, metrics)

    # ----------------------------------------------------------------- state

    def _extra_state(self) -> dict:
        import keras

        return {
            "policy_weights": [_encode_array(w) for w in self._model.get_weights()],
            "optimizer_weights": [
                _encode_array(keras.ops.convert_to_numpy(v)) for v in self._optimizer.variables
            ],
            "baseline": self._baseline,
            "score_var": self._score_var,
            "completed": self._completed,
            "num_updates": self._num_updates,
        }

    def _load_extra_state(self, state: dict) -> None:
        self._model.set_weights([_decode_array(text) for text in state["policy_weights"]])
        variables = self._optimizer.variables
        saved = state["optimizer_weights"]
        if len(saved) != len(variables):
            raise ValueError(
                f"state has {len(saved)} optimizer variables, this controller has {len(variables)}"
            )
        for variable, text in zip(variables, saved):
            variable.assign(_decode_array(text))
        self._numpy_policy = _NumpyPolicy(self._layout, self._model)
        self._baseline = state["baseline"]
        self._score_var = state["score_var"]
        self._completed = [dict(item) for item in state["completed"]]
        self._num_updates = int(state["num_updates"])
