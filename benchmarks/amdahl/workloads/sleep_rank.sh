# A stand-in rank: sleeps for the seconds given as its own parameter (rank r
# takes parameter r), holding its slot as a rank on a remote CPU would.
eval "exec sleep \"\${PESC_PARAMETER_${PESC_RANK}}\""
