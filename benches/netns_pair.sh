# benches/netns_pair.sh: sourced by compare.sh and dhcp_compare.sh (not run on its own).
# Builds pocketpxe, and creates (and deletes) the two network namespaces joined by a veth pair
# that every measurement runs in. The caller defines log() and die().

# Builds pocketpxe (release) and sets PPX to the binary; a PPX given already is used unbuilt.
build_pocketpxe() {
    local repo="$1"
    # A binary given in PPX (another build, say with other features) is measured as it is.
    if [ -n "${PPX:-}" ] && [ -x "$PPX" ]; then
        log "measuring $PPX (not rebuilt)"
        return 0
    fi
    PPX="${CARGO_TARGET_DIR:-$repo/target}/release/pocketpxe"
    log "building pocketpxe (release)"
    (cd "$repo" && timeout 1200 cargo build --quiet --release -p pocketpxe >&2) \
        || die "cargo build failed"
    [ -x "$PPX" ] || die "no pocketpxe binary at $PPX"
}

# make_veth_pair NS_SRV NS_CLI IF_SRV IF_CLI SRV_CIDR CLI_CIDR: two new namespaces (loopback
# up) joined by a veth pair with MTU 1500, IF_SRV in NS_SRV, IF_CLI in NS_CLI.
make_veth_pair() {
    local ns_srv="$1" ns_cli="$2" if_srv="$3" if_cli="$4" srv_cidr="$5" cli_cidr="$6"
    log "creating namespaces $ns_srv and $ns_cli (veth, MTU 1500)"
    ip netns add "$ns_srv"
    ip netns add "$ns_cli"
    ip -n "$ns_srv" link set lo up
    ip -n "$ns_cli" link set lo up
    ip -n "$ns_srv" link add "$if_srv" mtu 1500 type veth peer name "$if_cli" netns "$ns_cli"
    ip -n "$ns_srv" addr add "$srv_cidr" dev "$if_srv"
    ip -n "$ns_cli" addr add "$cli_cidr" dev "$if_cli"
    ip -n "$ns_srv" link set "$if_srv" up
    ip -n "$ns_cli" link set "$if_cli" up
}

# delete_namespaces NS...: removes them (the veth pair goes with them); missing ones are fine.
delete_namespaces() {
    local ns
    for ns in "$@"; do ip netns del "$ns" 2>/dev/null; done
    return 0
}
