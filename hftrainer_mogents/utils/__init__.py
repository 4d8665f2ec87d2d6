"""Small helpers shared by the package: the artifact I/O kit (:mod:`.io`: atomic writes,
checksums, safetensors, strict state dicts), sharding of batch jobs, precision, memory and
CUDA-graph switches."""
