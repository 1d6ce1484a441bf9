# pocketpxe in a container: the static (musl) binary and a passwd/group file naming its
# service user, nothing else. The build context is the directory scripts/static fills:
#
#   scripts/static && podman build -t pocketpxe -f Dockerfile target/static
#
# Run it in the host's network namespace, with the capability to add its address:
#
#   podman run --rm --network host --cap-add NET_ADMIN \
#     -v /srv/tftp:/srv/tftp:ro -v pocketpxe-leases:/var/lib/pocketpxe \
#     pocketpxe serve --interface eth1 --address 192.168.242.1/24 --root /srv/tftp --wait-interface
#
# docs/install.md says what is tested and what is not (`--nat` needs `nft`, which the image
# does not have).
FROM scratch
COPY pocketpxe /usr/bin/pocketpxe
COPY passwd group /etc/
ENTRYPOINT ["/usr/bin/pocketpxe"]
CMD ["--help"]
