using Procurement.Api.V1;

namespace Procurement.Cli;

public static partial class CliApp
{
    private static async Task<int> ContractsCreate(CommandContext c)
    {
        var a = c.Args;
        var request = new CreateContractRequest { TenantId = a.Required("tenant"), DisplayName = a.Required("name"), Terms = TermsFile.Load(a.Required("terms")) };
        ShowContract(c, await c.Client.Contracts.CreateAsync(request, c.CancellationToken));
        return 0;
    }

    private static async Task<int> ContractsGet(CommandContext c)
    {
        var id = c.Args.Positional1("CONTRACT_ID");
        ShowContract(c, await c.Client.Contracts.GetAsync(id, c.CancellationToken));
        return 0;
    }

    private static async Task<int> ContractsList(CommandContext c)
    {
        var request = new ListContractsRequest { TenantId = c.Args.Get("tenant") ?? "", PageSize = 1000 };
        if (c.Args.Get("state") is { } state)
        {
            request.State = Enum.TryParse<ContractState>(state.Replace("_", ""), ignoreCase: true, out var s) && s != ContractState.Unspecified
                ? s : throw new UsageException($"--state must be DRAFT, ACTIVE, SUSPENDED, TERMINATED or EXPIRED, not '{state}'");
        }

        var contracts = new List<Contract>();
        await foreach (var contract in c.Client.Contracts.ListAllAsync(request, c.CancellationToken))
        {
            contracts.Add(contract);
        }

        if (c.Out.Json)
        {
            var response = new ListContractsResponse();
            response.Contracts.AddRange(contracts);
            c.Out.Message(response);
            return 0;
        }

        c.Out.Table(["CONTRACT", "TENANT", "STATE", "NAME", "COMMITMENT/MONTH", "TERM", "VERSION"],
            contracts.Select(x => (IReadOnlyList<string>)[x.ContractId, x.TenantId, Output.Enum(x.State), x.DisplayName, Output.Money(x.Terms.MonthlyCommitment),
                $"{Output.Time(x.Terms.StartTime)[..10]} → {Output.Time(x.Terms.EndTime)[..10]}", $"{x.TermsVersion}/{x.LatestTermsVersion}"]));
        return 0;
    }

    private static async Task<int> ContractsUpdate(CommandContext c)
    {
        var a = c.Args;
        var request = new UpdateContractRequest { ContractId = a.Positional1("CONTRACT_ID"), Etag = a.Required("etag"), DisplayName = a.Required("name"), Terms = TermsFile.Load(a.Required("terms")) };
        ShowContract(c, await c.Client.Contracts.UpdateAsync(request, c.CancellationToken));
        return 0;
    }

    private static async Task<int> ContractsTransition(CommandContext c, string action)
    {
        var a = c.Args;
        var id = a.Positional1("CONTRACT_ID");
        var etag = a.Get("etag") ?? "";
        var reason = action is "suspend" or "terminate" ? a.Get("reason") ?? "" : "";
        var contracts = c.Client.Contracts;
        var contract = action switch
        {
            "activate" => await contracts.ActivateAsync(new ActivateContractRequest { ContractId = id, Etag = etag }, c.CancellationToken),
            "suspend" => await contracts.SuspendAsync(new SuspendContractRequest { ContractId = id, Etag = etag, Reason = reason }, c.CancellationToken),
            "resume" => await contracts.ResumeAsync(new ResumeContractRequest { ContractId = id, Etag = etag }, c.CancellationToken),
            _ => await contracts.TerminateAsync(new TerminateContractRequest { ContractId = id, Etag = etag, Reason = reason }, c.CancellationToken),
        };
        ShowContract(c, contract);
        return 0;
    }

    private static async Task<int> ContractsAmend(CommandContext c)
    {
        var a = c.Args;
        var request = new AmendContractRequest
        {
            ContractId = a.Positional1("CONTRACT_ID"), Etag = a.Required("etag"), EffectiveMonth = ParseMonth(a.Required("month")), Terms = TermsFile.Load(a.Required("terms")),
        };
        var response = await c.Client.Contracts.AmendAsync(request, c.CancellationToken);
        if (c.Out.Json)
        {
            c.Out.Message(response);
            return 0;
        }

        c.Out.Line($"version {response.Version.Version} takes effect {Output.Time(response.Version.EffectiveTime)}");
        ShowContract(c, response.Contract);
        return 0;
    }

    private static async Task<int> ContractsVersions(CommandContext c)
    {
        var id = c.Args.Positional1("CONTRACT_ID");
        var response = await c.Client.Contracts.ListVersionsAsync(new ListContractVersionsRequest { ContractId = id, PageSize = 1000 }, c.CancellationToken);
        if (c.Out.Json)
        {
            c.Out.Message(response);
            return 0;
        }

        c.Out.Table(["VERSION", "EFFECTIVE", "COMMITMENT/MONTH", "TERM END", "RESERVATIONS", "CREATED"],
            response.Versions.Select(v => (IReadOnlyList<string>)[v.Version.ToString(System.Globalization.CultureInfo.InvariantCulture), Output.Time(v.EffectiveTime),
                Output.Money(v.Terms.MonthlyCommitment), Output.Time(v.Terms.EndTime), Reservations(v.Terms), Output.Time(v.CreateTime)]));
        return 0;
    }

    private static void ShowContract(CommandContext c, Contract x)
    {
        if (c.Out.Json)
        {
            c.Out.Message(x);
            return;
        }

        var t = x.Terms;
        c.Out.Fields(
            ("contract", x.ContractId), ("tenant", x.TenantId), ("name", x.DisplayName), ("state", Output.Enum(x.State) + (x.StateReason.Length > 0 ? $" ({x.StateReason})" : "")),
            ("etag", x.Etag), ("terms version", $"{x.TermsVersion} in effect, {x.LatestTermsVersion} latest"),
            ("term", $"{Output.Time(t.StartTime)} → {Output.Time(t.EndTime)}"), ("commitment", $"{Output.Money(t.MonthlyCommitment)} per month"),
            ("reservations", Reservations(t)),
            ("priority", $"{t.PriorityAccess?.Priority ?? 0}{(t.PriorityAccess?.PreemptLowerPriorityBurst == true ? ", may preempt lower-priority burst" : "")}"),
            ("rate card", string.Join("; ", t.RateCard.Select(r => $"{r.AcceleratorType} {Output.Enum(r.Mode)} " +
                string.Join(", ", r.Tiers.Select(tier => $"{(tier.UpToGpuHours.Length > 0 ? "≤" + tier.UpToGpuHours : "beyond")} @ {Output.Money(tier.UnitPrice)}"))))),
            ("index", t.IndexLinkage is { } il ? $"{il.IndexName} base {il.BaseValue}, pass-through {il.PassThrough}, factor in [{il.Floor}, {il.Cap}]" : "none"),
            ("sla", t.Sla is { } sla ? $"{sla.AvailabilityTargetPercent}% target; credits " +
                string.Join(", ", sla.CreditSchedule.Select(r => $"<{r.BelowPercent}% → {r.CreditPercent}%")) + $"; cap {sla.CreditCapPercent}%" : "none"));
    }

    private static string Reservations(ContractTerms t) =>
        string.Join(", ", t.Entitlements.Select(e => $"{e.PoolId} {Units(e.ReservedUnits)} (+{Units(e.BurstLimitUnits)} burst)"));
}
