# What every HAT-Net config adds to its toolbox's runtime: mmhatnet's
# imports (HATNet, its hooks and transforms, safe checkpoint loading) and
# hooks: stop at the first NaN/inf loss, random numbers per (seed, epoch,
# iteration) for exact resume. The atomic checkpoint writes
# (default_hooks.checkpoint) sit in each family's config: mmengine refuses
# a key that two bases of one config both set, and default_hooks is the
# toolbox's.
custom_imports = dict(imports=['mmhatnet'], allow_failed_imports=False)
custom_hooks = [dict(type='FiniteLossHook'), dict(type='StepSeedHook')]
