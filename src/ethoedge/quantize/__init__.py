"""ethoedge.quantize: dynamic fixed-point quantization of the student (``docs/fixedpoint.md``).

- ``fixedpoint``: integer helpers of the contract (saturate, round_shift, align, requant,
  dot, bias_acc, choose_frac_bits, the sigmoid/tanh LUT and its measured error) and
  ``ExactAffine`` (exact integer products through float BLAS under a proven bound).
- ``qmodel``: ``QTensor`` and ``QuantizedStudent`` (JSON save/load, tensor names).
- ``config``: ``QuantConfig``.
- ``calibrate``: ``fold_normalizer``, ``calibrate`` (activation ranges of the float student).
- ``api``: ``quantize_student`` (post-training quantization at one word length).
- ``reference``: the integer-only NumPy reference (``reference_logits``, its line-by-line int64
  form ``reference_logits_plain``, ``quantize_input``, ``predict``, ``check_exact``) that the
  C export is checked against.
- ``rewrite``: ``SimQuantStudent`` (the same integer graph in PyTorch) and quantization-aware
  fine-tuning (``FakeQuantStudent``, ``qat_finetune``).
- ``sweep``: ``evaluate_word_lengths`` and ``plot_mcc_vs_bits``.
- ``bundle_quant``: ``quantize_bundle`` (``ethoedge quantize BUNDLE``).
"""
