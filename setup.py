"""Build step for the C extensions (everything else is in pyproject.toml).

Both are optional: where no C compiler is available the install still succeeds and the Python paths run
(slower, same behaviour), saying so in one line.

- `m2rl_slime.analyze.weights._native`: the one-pass block kernel of `analyze weights` (else its numpy kernel).
- `m2rl_slime.sandbox._native`: the code sandbox's program start with clone(CLONE_VM | CLONE_VFORK)
  (else the slot keepers fork).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "m2rl_slime.analyze.weights._native",
            sources=["m2rl_slime/analyze/weights/_native.c"],
            extra_compile_args=["-O3", "-fopenmp-simd", "-fno-math-errno"],
            optional=True,
        ),
        Extension(
            "m2rl_slime.sandbox._native",
            sources=["m2rl_slime/sandbox/_native.c"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
    ]
)
