"""Search spaces and genotypes as data (numpy only: this package builds no models)."""

from search_space.genotype import Block, CellSpec, Genotype, GenotypeError

__all__ = ["Block", "CellSpec", "Genotype", "GenotypeError"]
