#!/bin/sh
# Build the lab's Debian 12 root filesystem: systemd as PID 1, sshd, python3, an
# "ansible" user with passwordless sudo. No image registry is involved: the tree
# comes from Debian's archive through debootstrap, and drctl imports it into docker.
#
# Usage: build-rootfs.sh ROOTFS
# The mirror is the one this machine's apt already uses (debootstrap's default
# otherwise). The recipe's hash is part of the image tag, so editing this file
# rebuilds the image on the next `drctl lab up`.
set -eu
ROOTFS=$1
SUITE=bookworm

mirror=""
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [ -r "$f" ] || continue
    mirror=$(awk '/^URIs:/ {print $2; exit} /^deb / {print $2; exit}' "$f")
    [ -n "$mirror" ] && break
done

echo "lab-image: debootstrap $SUITE into $ROOTFS ${mirror:+from $mirror}"
debootstrap --variant=minbase \
    --include=python3,python3-apt,openssh-server,iproute2,iputils-ping,procps,sudo,systemd,systemd-sysv,dbus,ca-certificates,iptables,nftables,less,gnupg \
    "$SUITE" "$ROOTFS" $mirror >/dev/null

# Same apt sources as the machine (base, updates, security) when it has a deb822 file.
if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    cp /etc/apt/sources.list.d/debian.sources "$ROOTFS/etc/apt/sources.list.d/debian.sources"
    : > "$ROOTFS/etc/apt/sources.list"
fi

chroot "$ROOTFS" /bin/sh -eu <<'CHROOT'
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get -qq -y upgrade >/dev/null
# Pre-fetch (not install) the packages provisioning installs, so that a lab
# provision exercises the real apt path without waiting on the network.
apt-get -qq -y --download-only install \
    postgresql-15 postgresql-client-15 postgresql-15-repmgr keepalived pgbackrest \
    python3-psycopg2 python3-psycopg python3-flask python3-argon2 gunicorn \
    ssl-cert acl prometheus-node-exporter pgbouncer postgresql-client python3-cryptography \
    rsync openssh-client curl bind9 bind9-dnsutils >/dev/null
useradd --create-home --shell /bin/bash ansible
echo 'ansible ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/ansible
chmod 0440 /etc/sudoers.d/ansible
# Every container gets its own host keys at first boot.
rm -f /etc/ssh/ssh_host_*
mkdir -p /etc/systemd/system/ssh.service.d
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
    > /etc/systemd/system/ssh.service.d/hostkeys.conf
printf 'PasswordAuthentication no\nPermitRootLogin no\nUseDNS no\n' > /etc/ssh/sshd_config.d/lab.conf
systemctl enable ssh >/dev/null 2>&1
# Units that make no sense in a container.
systemctl mask getty@tty1.service serial-getty@console.service \
    systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true
echo 'lab' > /etc/hostname
CHROOT
echo "lab-image: root filesystem ready"
