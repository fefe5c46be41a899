using Google.Protobuf.WellKnownTypes;
using Procurement.Api.V1;

namespace Procurement.Cli;

/// <summary>Every command, grouped as the services group their RPCs.</summary>
public static partial class CliApp
{
    public static IReadOnlyList<CommandSpec> Specs() =>
    [
        // Pools
        new("pools", "create", "Create a pool of identical accelerators.",
            "--id ID --name NAME --region REGION --accelerator TYPE --capacity N",
            "procurement pools create --id use1-h100 --name \"H100s\" --region us-east-1 --accelerator H100-SXM-80GB --capacity 100000",
            PoolsCreate),
        new("pools", "list", "List pools.", "[--page-size N]", "procurement pools list", PoolsList),
        new("pools", "get", "Show a pool.", "POOL_ID", "procurement pools get use1-h100", PoolsGet),
        new("pools", "set-capacity", "Change a pool's capacity (refused below its reservations; a cut preempts borrowers).",
            "POOL_ID --capacity N [--etag E]", "procurement pools set-capacity use1-h100 --capacity 120000", PoolsSetCapacity),
        new("pools", "status", "Show a pool's units and each contract's standing in it.", "POOL_ID", "procurement pools status use1-h100", PoolsStatus),

        // Contracts
        new("contracts", "create", "Create a DRAFT contract from a JSON or YAML terms file.",
            "--tenant TENANT --name NAME --terms FILE", "procurement contracts create --tenant frontier-lab --name \"2027 deal\" --terms terms.yaml", ContractsCreate),
        new("contracts", "get", "Show a contract and its terms in effect.", "CONTRACT_ID", "procurement contracts get ctr_0123456789abcdef", ContractsGet),
        new("contracts", "list", "List contracts.", "[--tenant T] [--state DRAFT|ACTIVE|SUSPENDED|TERMINATED|EXPIRED]",
            "procurement contracts list --state ACTIVE", ContractsList),
        new("contracts", "update", "Replace a DRAFT contract's name and terms.", "CONTRACT_ID --etag E --name NAME --terms FILE",
            "procurement contracts update ctr_0123456789abcdef --etag 1 --name \"2027 deal\" --terms terms.yaml", ContractsUpdate),
        new("contracts", "activate", "Activate a DRAFT (refused if reservations would exceed a pool).", "CONTRACT_ID [--etag E]",
            "procurement contracts activate ctr_0123456789abcdef", c => ContractsTransition(c, "activate")),
        new("contracts", "suspend", "Suspend an ACTIVE contract; its allocations are released.", "CONTRACT_ID [--reason TEXT] [--etag E]",
            "procurement contracts suspend ctr_0123456789abcdef --reason \"unpaid invoice\"", c => ContractsTransition(c, "suspend")),
        new("contracts", "resume", "Resume a SUSPENDED contract.", "CONTRACT_ID [--etag E]",
            "procurement contracts resume ctr_0123456789abcdef", c => ContractsTransition(c, "resume")),
        new("contracts", "terminate", "End a contract early.", "CONTRACT_ID [--reason TEXT] [--etag E]",
            "procurement contracts terminate ctr_0123456789abcdef --reason breach", c => ContractsTransition(c, "terminate")),
        new("contracts", "amend", "Add a terms version from the start of a month.", "CONTRACT_ID --etag E --month YYYY-MM --terms FILE",
            "procurement contracts amend ctr_0123456789abcdef --etag 2 --month 2027-01 --terms amended.yaml", ContractsAmend),
        new("contracts", "versions", "List a contract's terms versions.", "CONTRACT_ID", "procurement contracts versions ctr_0123456789abcdef", ContractsVersions),

        // Allocations
        new("allocations", "request", "Request units of a pool for a contract.",
            "--contract C --pool P --units N [--duration 8h | --end-time TIME] [--wait] [--dry-run]",
            "procurement allocations request --contract ctr_0123456789abcdef --pool use1-h100 --units 2000 --dry-run", AllocationsRequest, "wait", "dry-run"),
        new("allocations", "get", "Show an allocation.", "ALLOCATION_ID", "procurement allocations get alc_42", AllocationsGet),
        new("allocations", "list", "List allocations.", "[--contract C] [--pool P] [--state PENDING|ACTIVE|RELEASED|PREEMPTED|EXPIRED|CANCELLED]",
            "procurement allocations list --pool use1-h100 --state ACTIVE", AllocationsList),
        new("allocations", "release", "Release an allocation (or cancel a pending one).", "ALLOCATION_ID", "procurement allocations release alc_42", AllocationsRelease),
        new("allocations", "watch", "Print allocation events as they happen; reconnects and resumes by itself.",
            "[--after SEQ] [--pool P] [--contract C] [--count N]", "procurement allocations watch --pool use1-h100", AllocationsWatch),

        // Capacity blocks
        new("blocks", "find", "The earliest windows a capacity block would fit, with prices.",
            "--contract C --pool P --units N --hours N [--earliest TIME] [--latest TIME] [--count N]",
            "procurement blocks find --contract ctr_0123456789abcdef --pool use1-h100 --units 20000 --hours 504 --earliest 2027-01-10T00:00:00Z", BlocksFind),
        new("blocks", "book", "Book a capacity block (whole UTC hours).", "--contract C --pool P --units N --start TIME --end TIME [--dry-run]",
            "procurement blocks book --contract ctr_0123456789abcdef --pool use1-h100 --units 20000 --start 2027-01-10T00:00:00Z --end 2027-01-31T00:00:00Z --dry-run",
            BlocksBook, "dry-run"),
        new("blocks", "list", "List capacity blocks.", "[--contract C] [--pool P] [--state BOOKED|ACTIVE|COMPLETED|CANCELLED]",
            "procurement blocks list --pool use1-h100 --state BOOKED", BlocksList),
        new("blocks", "get", "Show a capacity block.", "BLOCK_ID", "procurement blocks get blk_7", BlocksGet),
        new("blocks", "cancel", "Cancel a booked block (charged in full inside the notice period).", "BLOCK_ID [--etag E]",
            "procurement blocks cancel blk_7", BlocksCancel),
        new("blocks", "calendar", "A pool's reserved units against its capacity, day by day (UTC).", "POOL_ID [--from TIME] [--days N]",
            "procurement blocks calendar use1-h100 --days 28", BlocksCalendar),

        // Usage
        new("usage", "report", "Upload usage samples from a CSV or JSON file.",
            "--file FILE [--batch N]   (CSV columns: source,sample_id,allocation_id,window_start,window_end,busy_gpu_seconds)",
            "procurement usage report --file samples.csv", UsageReport),

        // Incidents and SLA
        new("incidents", "record", "Record an incident in a pool.",
            "--pool P --kind OUTAGE|DEGRADED|MAINTENANCE --start TIME [--end TIME] --units N [--announced TIME]   (TIME: ISO 8601 or now, now-30m)",
            "procurement incidents record --pool use1-h100 --kind OUTAGE --start now --units 4000", IncidentsRecord),
        new("incidents", "resolve", "End an open incident.", "INCIDENT_ID --end TIME", "procurement incidents resolve inc_7 --end now", IncidentsResolve),
        new("incidents", "list", "List incidents.", "[--pool P] [--from TIME] [--to TIME]", "procurement incidents list --pool use1-h100", IncidentsList),
        new("sla", "report", "A contract's uptime, downtime by incident and credit for a month.", "CONTRACT_ID --month YYYY-MM",
            "procurement sla report ctr_0123456789abcdef --month 2026-11", SlaReportCommand),

        // Money
        new("statements", "get", "A contract's statement for a month, as a bill.", "CONTRACT_ID --month YYYY-MM",
            "procurement statements get ctr_0123456789abcdef --month 2026-11", StatementsGet),
        new("quote", "", "Price projected usage against a contract's (or a file's) terms.",
            "(--contract C | --terms FILE) --month YYYY-MM --usage TYPE=GPU_HOURS... [--reservation-utilization F] [--pool-utilization F] [--index-value V] [--uptime PCT] [--block TYPE=UNITSxHOURS...]",
            "procurement quote --contract ctr_0123456789abcdef --month 2026-12 --usage H100-SXM-80GB=55000000 --uptime 99.95 --block H100-SXM-80GB=10000x504", Quote),
        new("index", "publish", "Publish a market index value.", "--name NAME --value V --effective TIME",
            "procurement index publish --name GPU-H100-SPOT-USE1 --value 2.46 --effective 2026-12-01T00:00:00Z", IndexPublish),
        new("index", "list", "List an index's values.", "--name NAME", "procurement index list --name GPU-H100-SPOT-USE1", IndexList),

        // The shell
        new("completion", "", "Print the shell completion script for bash, zsh or pwsh (PowerShell).", "SHELL",
            "source <(procurement completion bash)      # in ~/.bashrc; zsh: source <(procurement completion zsh)", Completion),

        // Audit
        new("audit", "list", "List the audit log of mutations.", "[--resource-type T] [--resource-id ID] [--page-size N]",
            "procurement audit list --resource-type contract", AuditList),
    ];

    private static async Task<int> PoolsCreate(CommandContext c)
    {
        var a = c.Args;
        var request = new CreatePoolRequest
        {
            PoolId = a.Required("id"), DisplayName = a.Required("name"), Region = a.Required("region"),
            AcceleratorType = a.Required("accelerator"), CapacityUnits = a.Long("capacity"),
        };
        ShowPool(c, await c.Client.Allocations.CreatePoolAsync(request, c.CancellationToken));
        return 0;
    }

    private static async Task<int> PoolsList(CommandContext c)
    {
        var pageSize = (int)c.Args.Long("page-size", 1000);
        var response = await c.Client.Allocations.ListPoolsAsync(new ListPoolsRequest { PageSize = pageSize }, c.CancellationToken);
        if (c.Out.Json)
        {
            c.Out.Message(response);
            return 0;
        }

        c.Out.Table(["POOL", "NAME", "REGION", "ACCELERATOR", "CAPACITY"],
            response.Pools.Select(p => (IReadOnlyList<string>)[p.PoolId, p.DisplayName, p.Region, p.AcceleratorType, Units(p.CapacityUnits)]));
        return 0;
    }

    private static async Task<int> PoolsGet(CommandContext c)
    {
        var id = c.Args.Positional1("POOL_ID");
        ShowPool(c, await c.Client.Allocations.GetPoolAsync(id, c.CancellationToken));
        return 0;
    }

    private static async Task<int> PoolsSetCapacity(CommandContext c)
    {
        var request = new UpdatePoolCapacityRequest { PoolId = c.Args.Positional1("POOL_ID"), CapacityUnits = c.Args.Long("capacity"), Etag = c.Args.Get("etag") ?? "" };
        ShowPool(c, await c.Client.Allocations.UpdatePoolCapacityAsync(request, c.CancellationToken));
        return 0;
    }

    private static async Task<int> PoolsStatus(CommandContext c)
    {
        var id = c.Args.Positional1("POOL_ID");
        var s = await c.Client.Allocations.GetPoolStatusAsync(id, c.CancellationToken);
        if (c.Out.Json)
        {
            c.Out.Message(s);
            return 0;
        }

        c.Out.Fields(("pool", $"{s.Pool.PoolId} ({s.Pool.AcceleratorType}, {s.Pool.Region})"), ("capacity", Units(s.Pool.CapacityUnits)),
            ("active", Units(s.ActiveUnits)), ("free", Units(s.FreeUnits)), ("reserved", Units(s.ReservedUnits)), ("blocks", Units(s.BlockUnits)),
            ("pending", Units(s.PendingUnits)));
        c.Out.Line();
        c.Out.Table(["CONTRACT", "TENANT", "PRIORITY", "RESERVED", "BLOCKS", "BURST LIMIT", "ACTIVE", "PENDING", "BORROWING"],
            s.Contracts.Select(x => (IReadOnlyList<string>)[x.ContractId, x.TenantId, x.Priority.ToString(System.Globalization.CultureInfo.InvariantCulture),
                Units(x.ReservedUnits), Units(x.BlockUnits), Units(x.BurstLimitUnits), Units(x.ActiveUnits), Units(x.PendingUnits), x.Borrowing ? "yes" : "no"]));
        return 0;
    }

    private static void ShowPool(CommandContext c, Pool p)
    {
        if (c.Out.Json)
        {
            c.Out.Message(p);
            return;
        }

        c.Out.Fields(("pool", p.PoolId), ("name", p.DisplayName), ("region", p.Region), ("accelerator", p.AcceleratorType),
            ("capacity", Units(p.CapacityUnits)), ("etag", p.Etag), ("updated", Output.Time(p.UpdateTime)));
    }

    internal static string Units(long n) => n.ToString("N0", System.Globalization.CultureInfo.InvariantCulture);

    private static Timestamp Ts(DateTimeOffset t) => Timestamp.FromDateTimeOffset(t);
}
