-- pollonly.lua: sets no watch and sleeps until interrupted. With --qemu QMP
-- --drive NODE, xascript then only polls the drive's dirty bitmap:
-- fig7-pollonly.sh's control for what the polls alone cost the guest.
while true do sleep(3600) end
