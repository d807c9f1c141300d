"""Recommenders: popularity, KNN, Shallow Net and BERT4Rec over pretrained item vectors.

`run.train_run` is the whole training job of the workflow's `train` rules; the model
classes (`pop.Popularity`, `knn.KNN`, `shallow.ShallowNet`, `bert4rec.Bert4Rec`) all reduce
to ranking factors (`base.Factors`) ranked by `audiorec.evaluation.ranking.top_k`.
Documentation: docs/models.md.
"""
