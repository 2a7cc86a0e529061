"""Matchmaking sessions (对接会): which patents to present to which enterprises, for one session or a year's series.

plan.py solves one session as an integer program (OR-Tools CP-SAT) and checks hand-edited plans; series.py splits
the corpus into themed sessions (clustering, then one assignment model); candidates.py turns the engine's strong
matches into the patents and (patent, enterprise) pairs both take.
"""
