#!/bin/sh
# xa-churn SECONDS: the load of the live churn suite
# (integration/churn_guests_test.go). For SECONDS, in a tight loop: unload
# and reload modules (the module list changes under a monitor), load and
# unload the held one, fork sleepers and kill them, and run short-lived
# processes that touch memory (page tables and pages freed and reused, with
# init_on_free). Ends with the modules it churned loaded again and prints
#   XA-CHURN-DONE iterations=N forks=F kills=K modfail=M
# live-guest.sh installs it in the live guest as /bin/xa-churn. Busybox ash.
secs=${1:?usage: xa-churn SECONDS}
mods="nlmon dummy isofs crc7"
held=romfs
end=$(($(date +%s) + secs))
i=0 forks=0 kills=0 modfail=0
while [ "$(date +%s)" -lt "$end" ]; do
    for m in $mods; do
        rmmod "$m" || modfail=$((modfail + 1))
        insmod "/lib/modules/$m.ko" || modfail=$((modfail + 1))
    done
    if insmod "/lib/modules/$held.ko"; then
        rmmod "$held" || modfail=$((modfail + 1))
    else
        modfail=$((modfail + 1))
    fi
    sleep 30 &
    a=$!
    sleep 30 &
    b=$!
    (:) # a forked subshell that exits at once
    dd if=/dev/zero of=/dev/null bs=256k count=4 2>/dev/null
    kill "$a" "$b" && kills=$((kills + 2))
    wait "$a" "$b" 2>/dev/null
    forks=$((forks + 5))
    i=$((i + 1))
done
echo "XA-CHURN-DONE iterations=$i forks=$forks kills=$kills modfail=$modfail"
