"""Many runs: a grid of cells (`grids`) run and resumed (`runner`) at a cost estimated first
(`costs`), the smallest-D search (`search`), results gathered (`collect`) and read as a study
(`study`), tables (`tables`) and figures (`figures`)."""
