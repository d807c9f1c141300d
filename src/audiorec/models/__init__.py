"""Recommenders: popularity, KNN, Shallow Net, BERT4Rec and SASRec over pretrained item vectors.

`run.train_run` is the whole training job of the workflow's `train` rules. Each model type
is a module with a `build(context)` function and a declaration beside it (`<type>.yaml`,
read by `registry` and by the workflow); how items enter a model is `items.ItemInput`
(the `items:` setting). Every model reduces to ranking factors (`base.Factors`) ranked by
`audiorec.evaluation.ranking.top_k`. Documentation: docs/models.md.
"""
