"""Side-by-side memory/speed benchmark: stock transformers vs lvu_ext (`lvu-ext bench`)."""
