"""Policy neighbourhoods (paper Fig. 4, Eq. 1, Table 6): ``analyze kl`` and ``analyze subsets``.

Not a slime hook: `sampling` samples each expert on each domain's prompts through the evaluation runner's
client and scores the same tokens under the expert and the multi-domain models with the MT-OPD teacher
client; `estimators` turns log-probs into k1/k3 estimates, `report` into matrices and neighbourhoods,
`plot` into heat maps; `subsets` writes the merge recipes of the Table-6 ablation.
"""
