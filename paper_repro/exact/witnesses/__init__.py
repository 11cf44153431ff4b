"""Checking and keeping witnesses: ``witness`` (exact-rational and float32 checks of an
adversarial example), ``rational`` (exact rational forward passes) and ``records`` (results as
resumable JSON lines).
"""
