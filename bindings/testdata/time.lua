-- sleep waits about as long as asked; now() is in seconds and moves on.
local t0 = now()
sleep(0.05)
local dt = now() - t0
print(dt >= 0.05 and dt < 5)
print(now() > 1.7e9)
sleep(0)
print(pcall(sleep, -1))
print(pcall(sleep, "soon"))
