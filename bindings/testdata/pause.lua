-- On a dump, pause and resume do nothing; with_paused passes arguments and
-- results through, and re-raises fn's error.
print(pause(), resume())
print(with_paused(function(a, b) return a + b, "x" end, 2, 3))
local ok, err = pcall(with_paused, function() error("inside") end)
print(ok, err)
ok, err = pcall(with_paused, function() error({code = 7}) end)
print(ok, type(err), err.code)
