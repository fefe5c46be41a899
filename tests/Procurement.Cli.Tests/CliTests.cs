using System.Text.Json;
using Procurement.Cli;
using Procurement.Server.Auth;
using Procurement.TestSupport;

namespace Procurement.Cli.Tests;

/// <summary>The CLI, in process, against the real server.</summary>
public sealed class CliTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Now = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
    private ServerHarness _server = null!;
    private string _folder = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync(Now);
        _folder = Directory.CreateTempSubdirectory("procurement-cli-").FullName;
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    private sealed record Result(int Code, string Out, string Err)
    {
        public JsonElement Json => JsonDocument.Parse(Out).RootElement;
    }

    private async Task<Result> Run(params string[] args) => await RunAs(_server.OperatorKey, args);

    private Task<Result> RunAs(string? key, params string[] args) => RunAs(key, Terminal.None, args);

    private async Task<Result> RunAs(string? key, Terminal terminal, string[] args, string? noColor = null)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var env = new Dictionary<string, string?> { ["PROCUREMENT_ENDPOINT"] = _server.Address, ["PROCUREMENT_API_KEY"] = key, ["HOME"] = _folder, ["NO_COLOR"] = noColor };
        var code = await CliApp.RunAsync(args, stdout, stderr, name => env.GetValueOrDefault(name), terminal: terminal);
        return new Result(code, stdout.ToString(), stderr.ToString());
    }

    private static string TermsPath => Path.Combine(AppContext.BaseDirectory, "examples", "terms.yaml");

    private async Task<string> SetUpPoolAndContractAsync(bool activate = true)
    {
        Assert.Equal(0, (await Run("pools", "create", "--id", "use1-h100", "--name", "H100s", "--region", "us-east-1", "--accelerator", "H100-SXM-80GB", "--capacity", "5000")).Code);
        var created = await Run("contracts", "create", "--tenant", "frontier-lab", "--name", "2027 deal", "--terms", TermsPath, "--output", "json");
        Assert.Equal(0, created.Code);
        var id = created.Json.GetProperty("contract_id").GetString()!;
        if (activate)
        {
            Assert.Equal(0, (await Run("contracts", "activate", id)).Code);
        }

        return id;
    }

    [Fact]
    public async Task Pools_CreateListGetSetCapacityStatus()
    {
        await SetUpPoolAndContractAsync();
        var list = await Run("pools", "list");
        Assert.Equal(0, list.Code);
        Assert.Contains("use1-h100  H100s  us-east-1  H100-SXM-80GB  5,000", list.Out);
        Assert.Contains("capacity:    5,000", (await Run("pools", "get", "use1-h100")).Out);
        var raised = await Run("pools", "set-capacity", "use1-h100", "--capacity", "6000", "--output", "json");
        Assert.Equal("6000", raised.Json.GetProperty("capacity_units").GetString());
        var status = await Run("pools", "status", "use1-h100");
        Assert.Contains("reserved: 2,000", status.Out);
        Assert.Contains("frontier-lab", status.Out);
    }

    [Fact]
    public async Task Contracts_FullLifecycle()
    {
        var id = await SetUpPoolAndContractAsync(activate: false);
        var draft = (await Run("contracts", "get", id, "--output", "json")).Json;
        Assert.Equal("CONTRACT_STATE_DRAFT", draft.GetProperty("state").GetString());
        var updated = await Run("contracts", "update", id, "--etag", draft.GetProperty("etag").GetString()!, "--name", "Renamed", "--terms", TermsPath);
        Assert.Equal(0, updated.Code);
        Assert.Matches("name: +Renamed", updated.Out);
        Assert.Contains("ACTIVE", (await Run("contracts", "activate", id)).Out);
        Assert.Contains("SUSPENDED (audit)", (await Run("contracts", "suspend", id, "--reason", "audit")).Out);
        Assert.Matches("state: +ACTIVE", (await Run("contracts", "resume", id)).Out);
        var etag = (await Run("contracts", "get", id, "--output", "json")).Json.GetProperty("etag").GetString()!;
        var amended = await Run("contracts", "amend", id, "--etag", etag, "--month", "2027-01", "--terms", TermsPath);
        Assert.Equal(0, amended.Code);
        Assert.Contains("version 2 takes effect 2027-01-01 00:00:00Z", amended.Out);
        var versions = await Run("contracts", "versions", id, "--output", "json");
        Assert.Equal(2, versions.Json.GetProperty("versions").GetArrayLength());
        var listed = await Run("contracts", "list", "--state", "ACTIVE");
        Assert.Contains(id, listed.Out);
        Assert.Contains("5,000,000.00 USD", listed.Out);
        Assert.Contains("TERMINATED (ended)", (await Run("contracts", "terminate", id, "--reason", "ended")).Out);
    }

    [Fact]
    public async Task Blocks_FindBookListGetCalendarCancel()
    {
        var id = await SetUpPoolAndContractAsync();
        string[] window = ["--start", "2026-12-10T00:00:00Z", "--end", "2026-12-13T00:00:00Z"];
        var dry = await Run(["blocks", "book", "--contract", id, "--pool", "use1-h100", "--units", "1000", .. window, "--dry-run"]);
        Assert.Equal(0, dry.Code);
        // 1,000 units × 72 hours × $2.60.
        Assert.Contains("dry run: would book, for 187,200.00 USD", dry.Out);
        var tooBig = await Run(["blocks", "book", "--contract", id, "--pool", "use1-h100", "--units", "1001", .. window, "--dry-run"]);
        Assert.Contains("would not fit (BLOCK_ENTITLEMENT_EXCEEDED): 1,001 units reserved at 2026-12-10 00:00:00Z against 1,000", tooBig.Out);

        var booked = await Run(["blocks", "book", "--contract", id, "--pool", "use1-h100", "--units", "1000", .. window, "--output", "json"]);
        Assert.Equal(0, booked.Code);
        var blockId = booked.Json.GetProperty("block").GetProperty("block_id").GetString()!;
        Assert.Contains(blockId, (await Run("blocks", "list", "--pool", "use1-h100", "--state", "booked")).Out);
        Assert.Matches("price/GPU-h: +2.6 \\(rate 2.60 USD × index factor 1\\)", (await Run("blocks", "get", blockId)).Out);

        // The entitlement is used until the block ends: the first 24-hour window starts then.
        var found = await Run("blocks", "find", "--contract", id, "--pool", "use1-h100", "--units", "1000", "--hours", "24", "--earliest", "2026-12-10T00:00:00Z", "--count", "2");
        Assert.Contains("2026-12-13 00:00:00Z  2026-12-14 00:00:00Z  1,000  2.6          62,400.00 USD", found.Out);

        var calendar = await Run("blocks", "calendar", "use1-h100", "--from", "2026-12-09T00:00:00Z", "--days", "5");
        Assert.Contains("capacity 5,000, base reservations 2,000", calendar.Out);
        Assert.Contains("2026-12-09  ################........................  2,000 / 5,000", calendar.Out);
        Assert.Contains("2026-12-10  ################++++++++................  3,000 / 5,000 (blocks 1,000)", calendar.Out);
        Assert.Contains("2026-12-13  ################........................  2,000 / 5,000", calendar.Out);

        // A projected block prices on the quote's capacity-blocks line: 1,000 × 72 GPU-h × $2.60.
        var quote = await Run("quote", "--contract", id, "--month", "2026-12", "--block", "H100-SXM-80GB=1000x72");
        Assert.Contains("Capacity blocks (1)", quote.Out);
        Assert.Contains("projected: 72000 GPU-h × 2.6 = 187,200.00 USD", quote.Out);
        Assert.Equal(64, (await Run("quote", "--contract", id, "--month", "2026-12", "--block", "H100-SXM-80GB=1000")).Code);

        // Nine days before its start, inside the 14-day notice: the whole price.
        var cancelled = await Run("blocks", "cancel", blockId);
        Assert.Equal(0, cancelled.Code);
        Assert.Contains("cancellation charge: 187,200.00 USD", cancelled.Out);
        Assert.Equal(5, (await Run("blocks", "cancel", "blk_404")).Code);
    }

    [Fact]
    public async Task Allocations_RequestDryRunListReleaseWatch()
    {
        var id = await SetUpPoolAndContractAsync();
        var dry = await Run("allocations", "request", "--contract", id, "--pool", "use1-h100", "--units", "1500", "--dry-run");
        Assert.Equal(0, dry.Code);
        Assert.Contains("dry run: would ADMIT, within the reservation", dry.Out);
        var admitted = await Run("allocations", "request", "--contract", id, "--pool", "use1-h100", "--units", "1500", "--duration", "8h", "--output", "json");
        var allocationId = admitted.Json.GetProperty("allocation").GetProperty("allocation_id").GetString()!;
        Assert.Equal("ADMISSION_OUTCOME_ADMIT", admitted.Json.GetProperty("decision").GetProperty("outcome").GetString());
        Assert.Contains("ACTIVE", (await Run("allocations", "get", allocationId)).Out);
        Assert.Contains(allocationId, (await Run("allocations", "list", "--pool", "use1-h100", "--state", "ACTIVE")).Out);
        Assert.Contains("RELEASED", (await Run("allocations", "release", allocationId)).Out);
        var watch = await Run("allocations", "watch", "--count", "2");
        Assert.Equal(0, watch.Code);
        Assert.Contains("ADMITTED", watch.Out);
        Assert.Contains("RELEASED", watch.Out);
    }

    [Fact]
    public async Task UsageIncidentsSlaStatementsQuoteIndexAudit()
    {
        var id = await SetUpPoolAndContractAsync();
        var allocation = (await Run("allocations", "request", "--contract", id, "--pool", "use1-h100", "--units", "100", "--output", "json"))
            .Json.GetProperty("allocation").GetProperty("allocation_id").GetString()!;
        _server.Clock.Advance(TimeSpan.FromHours(3));
        var csv = Path.Combine(_folder, "samples.csv");
        await File.WriteAllLinesAsync(csv,
        [
            "source,sample_id,allocation_id,window_start,window_end,busy_gpu_seconds",
            $"m1,1,{allocation},2026-12-01T00:00:00Z,2026-12-01T01:00:00Z,180000",
            $"m1,2,{allocation},2026-12-01T01:00:00Z,2026-12-01T02:00:00Z,999999999",
        ]);
        var meterKey = await _server.CreateKeyAsync(Role.Meter);
        var usage = await RunAs(meterKey, "usage", "report", "--file", csv);
        Assert.Equal(0, usage.Code);
        Assert.Contains("accepted:  1", usage.Out);
        Assert.Contains("BUSY_SECONDS_OUT_OF_RANGE", usage.Out);
        Assert.DoesNotContain("%", usage.Err); // no progress bar: stderr is not a terminal

        var onATerminal = await RunAs(meterKey, new Terminal(Output: true, Error: true), ["usage", "report", "--file", csv]);
        Assert.Contains("100%", onATerminal.Err); // the progress bar, drawn on a terminal
        Assert.Contains("duplicate: 1", onATerminal.Out);

        var incident = await Run("incidents", "record", "--pool", "use1-h100", "--kind", "OUTAGE", "--start", "2026-12-01T01:00:00Z", "--units", "2500", "--output", "json");
        var incidentId = incident.Json.GetProperty("incident_id").GetString()!;
        Assert.Contains("2026-12-01 02:00:00Z", (await Run("incidents", "resolve", incidentId, "--end", "2026-12-01T02:00:00Z")).Out);
        Assert.Contains(incidentId, (await Run("incidents", "list", "--pool", "use1-h100")).Out);

        var report = await Run("sla", "report", id, "--month", "2026-12");
        Assert.Equal(0, report.Code);
        Assert.Contains("SLA report", report.Out);
        Assert.Contains("counted", report.Out);
        var statement = await Run("statements", "get", id, "--month", "2026-12");
        Assert.Equal(0, statement.Code);
        Assert.Contains("PROVISIONAL", statement.Out);
        Assert.Contains("Total", statement.Out);
        var quote = await Run("quote", "--contract", id, "--month", "2026-12", "--usage", "H100-SXM-80GB=1000", "--uptime", "99.5");
        Assert.Contains("Quote", quote.Out);
        Assert.Contains("2,100.00 USD", quote.Out); // 1,000 GPU-h × $2.10

        Assert.Equal(0, (await Run("index", "publish", "--name", "GPU-IDX", "--value", "2.46", "--effective", "2026-12-01T00:00:00Z")).Code);
        Assert.Contains("2.46", (await Run("index", "list", "--name", "GPU-IDX")).Out);
        var audit = await Run("audit", "list", "--resource-type", "contract");
        Assert.Contains("CreateContract", audit.Out);
        Assert.Contains("ActivateContract", audit.Out);
    }

    [Fact]
    public async Task JsonOutput_ParsesAndKeepsItsFieldNames()
    {
        var id = await SetUpPoolAndContractAsync();
        var contract = (await Run("contracts", "get", id, "--output", "json")).Json;
        foreach (var field in new[] { "contract_id", "tenant_id", "display_name", "state", "etag", "terms_version", "terms", "latest_terms_version", "create_time" })
        {
            Assert.True(contract.TryGetProperty(field, out _), field);
        }

        Assert.True(contract.GetProperty("terms").TryGetProperty("monthly_commitment", out var commitment));
        Assert.Equal("5000000000000", commitment.GetProperty("amount_micros").GetString());
        var pools = (await Run("pools", "list", "--output", "json")).Json;
        Assert.Equal("use1-h100", pools.GetProperty("pools")[0].GetProperty("pool_id").GetString());
        var statement = (await Run("statements", "get", id, "--month", "2026-12", "--output", "json")).Json;
        Assert.Equal(4, statement.GetProperty("lines").GetArrayLength());
        Assert.True(statement.GetProperty("total").TryGetProperty("amount_micros", out _));
    }

    [Fact]
    public async Task ExitCodes_FollowTheGrpcStatus()
    {
        var notFound = await Run("pools", "get", "nope");
        Assert.Equal(5, notFound.Code);
        Assert.Contains("NOT_FOUND", notFound.Err);

        var customer = await _server.CreateKeyAsync(Role.Customer, "lab-a");
        var denied = await RunAs(customer, "pools", "create", "--id", "x", "--name", "x", "--region", "r", "--accelerator", "A", "--capacity", "1");
        Assert.Equal(7, denied.Code);
        Assert.Contains("ROLE_NOT_ALLOWED", denied.Err);

        var invalid = await Run("pools", "create", "--id", "Bad Id", "--name", "x", "--region", "r", "--accelerator", "A", "--capacity", "-1");
        Assert.Equal(3, invalid.Code);
        Assert.Contains("  pool_id: ", invalid.Err);
        Assert.Contains("  capacity_units: ", invalid.Err);

        Assert.Equal(16, (await RunAs("pk_wrong", "pools", "list")).Code);
        Assert.Equal(64, (await Run("pools", "list", "--colour", "red")).Code);
        Assert.Equal(64, (await Run("frobnicate")).Code);
        Assert.DoesNotContain("   at ", invalid.Err); // never a stack trace
    }

    [Fact]
    public async Task UnreachableServer_ExitsUnavailable()
    {
        var port = ServerHarness.FreePort();
        var stderr = new StringWriter();
        var code = await CliApp.RunAsync(["--endpoint", $"http://127.0.0.1:{port}", "--api-key", "pk_secret-key-value", "pools", "list"], new StringWriter(), stderr, _ => null);
        Assert.Equal(14, code);
        Assert.Contains("UNAVAILABLE", stderr.ToString());
        Assert.DoesNotContain("pk_secret-key-value", stderr.ToString()); // the key is never printed
    }

    [Fact]
    public async Task TermsFileWithAMistake_NamesTheField()
    {
        await SetUpPoolAndContractAsync();
        var bad = Path.Combine(_folder, "bad.yaml");
        await File.WriteAllTextAsync(bad, (await File.ReadAllTextAsync(TermsPath)).Replace("availability_target_percent: \"99.9\"", "availability_target_percent: \"101\""));
        var result = await Run("contracts", "create", "--tenant", "frontier-lab", "--name", "x", "--terms", bad);
        Assert.Equal(3, result.Code);
        Assert.Contains("terms.sla.availability_target_percent: must be in (0, 100]", result.Err);

        var broken = Path.Combine(_folder, "broken.json");
        await File.WriteAllTextAsync(broken, "{\"start_time\": ");
        var parse = await Run("contracts", "create", "--tenant", "frontier-lab", "--name", "x", "--terms", broken);
        Assert.Equal(3, parse.Code);
        Assert.Contains("broken.json", parse.Err);
    }

    [Fact]
    public async Task ConfigFile_ProvidesEndpointAndKey_AndFlagsWin()
    {
        await SetUpPoolAndContractAsync();
        var config = Path.Combine(_folder, "config.json");
        await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new Dictionary<string, string> { ["endpoint"] = _server.Address, ["api_key"] = _server.OperatorKey }));
        var stdout = new StringWriter();
        Assert.Equal(0, await CliApp.RunAsync(["pools", "list", "--config", config], stdout, new StringWriter(), _ => null));
        Assert.Contains("use1-h100", stdout.ToString());
        Assert.Equal(16, await CliApp.RunAsync(["pools", "list", "--config", config, "--api-key", "pk_other"], new StringWriter(), new StringWriter(), _ => null));
    }

    [Fact]
    public async Task ExtraArguments_AreRefused_AndNothingIsReleased()
    {
        var contract = await SetUpPoolAndContractAsync();
        var granted = await Run("allocations", "request", "--contract", contract, "--pool", "use1-h100", "--units", "10", "-o", "json");
        var id = granted.Json.GetProperty("allocation").GetProperty("allocation_id").GetString()!;

        var refused = await Run("allocations", "release", id, "alc_2");

        Assert.Equal(CliApp.UsageExitCode, refused.Code);
        Assert.Contains("Unrecognized command or argument 'alc_2'", refused.Err);
        Assert.Contains("Usage: procurement allocations release ALLOCATION_ID", refused.Err);
        Assert.Contains("ALLOCATION_STATE_ACTIVE", (await Run("allocations", "get", id, "-o", "json")).Out);
        // After "--" every word is an argument, even one that looks like an option.
        Assert.Equal(0, (await Run("allocations", "release", "--", id)).Code);
    }

    [Theory]
    [InlineData(new[] { "pools", "list", "--colour", "red" }, "Unrecognized command or argument '--colour'")]
    [InlineData(new[] { "pools", "lst" }, "Did you mean one of the following?\nlist")]
    [InlineData(new[] { "allocations", "request", "--contrat", "ctr_1" }, "Did you mean one of the following?\n--contract")]
    [InlineData(new[] { "frobnicate" }, "Unrecognized command or argument 'frobnicate'")]
    [InlineData(new[] { "pools", "list", "-o", "yaml" }, "Argument 'yaml' not recognized. Must be one of")]
    [InlineData(new[] { "pools", "set-capacity", "use1-h100", "--capacity", "lots" }, "--capacity must be a whole number, not 'lots'")]
    [InlineData(new[] { "allocations", "watch", "--after", "1.5" }, "--after must be a whole number, not '1.5'")]
    public async Task UsageMistakes_Exit64_WithTheMistakeAndASuggestion(string[] args, string says)
    {
        var result = await Run(args);

        Assert.Equal(CliApp.UsageExitCode, result.Code);
        Assert.Contains(says, result.Err.ReplaceLineEndings("\n"));
        Assert.StartsWith("error: ", result.Err);
        Assert.Empty(result.Out);
    }

    [Fact]
    public async Task Errors_AreRedOnATerminal_UnlessNoColorIsSet()
    {
        var red = await RunAs(_server.OperatorKey, new Terminal(true, true), ["pools", "get", "nope"]);
        var plain = await RunAs(_server.OperatorKey, new Terminal(true, true), ["pools", "get", "nope"], noColor: "1");
        var piped = await RunAs(_server.OperatorKey, Terminal.None, ["pools", "get", "nope"]);

        Assert.StartsWith("\u001b[31merror:\u001b[0m NOT_FOUND", red.Err);
        Assert.StartsWith("error: NOT_FOUND", plain.Err);
        Assert.StartsWith("error: NOT_FOUND", piped.Err);
    }

    [Fact]
    public async Task ResponseFile_SuppliesArguments()
    {
        await SetUpPoolAndContractAsync();
        var file = Path.Combine(_folder, "args.rsp");
        await File.WriteAllLinesAsync(file, ["pools", "get", "use1-h100", "--output json"]);

        var result = await Run($"@{file}");

        Assert.Equal(0, result.Code);
        Assert.Equal("use1-h100", result.Json.GetProperty("pool_id").GetString());
    }

    [Fact]
    public async Task Completion_SuggestsCommandsVerbsAndOptions()
    {
        Assert.Equal(["pools"], Lines((await Run("[suggest:4]", "pool")).Out));
        var verbs = Lines((await Run("[suggest:7]", "pools s")).Out);
        Assert.Contains("set-capacity", verbs);
        Assert.Contains("status", verbs);
        Assert.DoesNotContain("create", verbs);
        Assert.Contains("--contract", Lines((await Run("[suggest:25]", "allocations request --con")).Out));

        foreach (var shell in new[] { "bash", "zsh", "pwsh" })
        {
            var script = await Run("completion", shell);
            Assert.Equal(0, script.Code);
            Assert.Contains("[suggest:", script.Out);
        }
        Assert.Equal(CliApp.UsageExitCode, (await Run("completion", "fish")).Code);
        // A completion script calls no server, so it needs no configuration.
        Assert.Equal(0, (await Run("completion", "bash", "--config", Path.Combine(_folder, "missing.json"))).Code);
    }

    [Fact]
    public async Task Completion_InBash_CompletesAVerb()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return; // no bash: the script's text is checked by the test above.
        }

        // `procurement` on PATH, as an installed tool would be, running this build.
        var bin = Directory.CreateDirectory(Path.Combine(_folder, "bin")).FullName;
        var launcher = Path.Combine(bin, "procurement");
        await File.WriteAllTextAsync(launcher, $"#!/bin/sh\nexec dotnet '{Path.Combine(AppContext.BaseDirectory, "procurement.dll")}' \"$@\"\n");
        File.SetUnixFileMode(launcher, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var script = Path.Combine(_folder, "completion.bash");
        await File.WriteAllTextAsync(script, (await Run("completion", "bash")).Out);

        var info = new System.Diagnostics.ProcessStartInfo("/bin/bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add($"source '{script}'; COMP_LINE='procurement pools st'; COMP_POINT=20; COMP_WORDS=(procurement pools st); COMP_CWORD=2; _procurement_complete; echo \"${{COMPREPLY[*]}}\"");
        info.Environment["PATH"] = $"{bin}:{Environment.GetEnvironmentVariable("PATH")}";
        using var bash = System.Diagnostics.Process.Start(info)!;
        var output = await bash.StandardOutput.ReadToEndAsync();
        await bash.WaitForExitAsync();

        Assert.Equal("status", output.Trim());
    }

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    [Fact]
    public async Task Help_IsThereForEveryCommand_WithAnExample()
    {
        foreach (var spec in CliApp.Specs())
        {
            string[] args = spec.Verb.Length > 0 ? [spec.Group, spec.Verb, "--help"] : [spec.Group, "--help"];
            var help = await Run(args);
            Assert.Equal(0, help.Code);
            Assert.Contains("Example:", help.Out);
            Assert.Contains("procurement " + spec.Group, help.Out);
            Assert.Contains("Exit codes", help.Out);
        }
    }
}
