"""Build step for the one C extension (everything else is in pyproject.toml).

`m2rl_slime.analyze.weights._native` is the one-pass block kernel of `analyze weights`. It is optional: where
no C compiler is available the install still succeeds and the analysis uses its numpy kernel (slower,
same numbers), saying so in one line.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "m2rl_slime.analyze.weights._native",
            sources=["m2rl_slime/analyze/weights/_native.c"],
            extra_compile_args=["-O3", "-fopenmp-simd", "-fno-math-errno"],
            optional=True,
        )
    ]
)
