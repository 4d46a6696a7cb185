// fakes: filled below
