using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Procurement.Server.Hosting;
using Procurement.Storage;
using Procurement.Storage.Sqlite;

namespace Procurement.Storage.Tests;

/// <summary>
/// The SQLite writer counts its units and groups and where their time goes, and the writer report
/// logs the difference since its last report. Time is a fake clock that the units themselves move,
/// so every figure is exact.
/// </summary>
[Trait("Category", "SqliteOnly")]
public sealed class WriterReportTests : IAsyncLifetime
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"writer-report-{Guid.NewGuid():N}.db");
    private readonly FakeTimeProvider _time = new();
    private SqliteStore _store = null!;

    public Task InitializeAsync()
    {
        var database = new SqliteDatabase(_path);
        database.Initialize(_time);
        _store = new SqliteStore(database, NullLogger<SqliteStore>.Instance, _time);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        SqliteConnection.ClearAllPools();
        File.Delete(_path);
    }

    /// <summary>A unit that takes <paramref name="ms"/> milliseconds of the fake clock.</summary>
    private Task<bool> Unit(int ms, Task? gate = null, TaskCompletionSource? started = null) => _store.WriteAsync(async s =>
    {
        started?.SetResult();
        if (gate is not null)
        {
            await gate;
        }

        await s.Pools.InsertAsync(HeldWriter.Pool($"p-{Guid.NewGuid():N}"));
        _time.Advance(TimeSpan.FromMilliseconds(ms));
        return true;
    }, CancellationToken.None).WaitAsync(HeldWriter.Limit);

    /// <summary>One unit of 2 ms holds the writer while two of 1 ms queue behind it; they then run as one group.</summary>
    private async Task RunTwoGroupsAsync()
    {
        var gate = new TaskCompletionSource();
        var started = new TaskCompletionSource();
        var first = Unit(2, gate.Task, started);
        await started.Task.WaitAsync(HeldWriter.Limit);
        var queued = new[] { Unit(1), Unit(1) };
        gate.SetResult();
        Assert.True(await first);
        Assert.All(await Task.WhenAll(queued), Assert.True);
    }

    [Fact]
    public async Task TheWriter_CountsUnitsGroupsTheirWaitsAndTheirRunningTime()
    {
        await RunTwoGroupsAsync();

        var totals = _store.Stats.Read();
        Assert.Equal(3, totals.Units);
        Assert.Equal(2, totals.Groups);
        Assert.Equal(TimeSpan.FromMilliseconds(4), totals.Queued); // the two queued units each waited the first unit's 2 ms
        Assert.Equal(TimeSpan.FromMilliseconds(4), totals.RunningUnits); // 2 ms, then 1 + 1 ms
        Assert.Equal(TimeSpan.Zero, totals.Committing); // the fake clock does not move while SQLite commits
        Assert.Equal(TimeSpan.FromMilliseconds(4), totals.Elapsed);
        Assert.Equal(1.0, totals.Busy);
    }

    [Fact]
    public async Task TheReport_LogsTheWritersWorkSinceTheLastReport_AndNothingWhenThereWasNone()
    {
        var log = new ListLogger<WriterReport>();
        var report = new WriterReport(_store, _time, Options.Create(new ServerOptions { WriterReportInterval = TimeSpan.FromSeconds(10) }), log);
        await _store.WriteAsync(s => Task.FromResult(true), CancellationToken.None);
        Assert.Equal(1, report.ReportOnce()!.Value.Units);

        _time.Advance(TimeSpan.FromMilliseconds(4));
        await RunTwoGroupsAsync();
        var span = report.ReportOnce()!.Value;
        Assert.Equal((3, 2), (span.Units, span.Groups));
        Assert.Equal(TimeSpan.FromMilliseconds(8), span.Elapsed);
        Assert.Equal(0.5, span.Busy);
        Assert.Equal(2, log.Entries.Count);
        var (level, id, message) = log.Entries[1];
        Assert.Equal((LogLevel.Information, 3301), (level, id));
        // The slowest run and commit of the interval, then the checkpointer's and the runtime's pauses (not this clock's).
        Assert.StartsWith(
            "SQLite writer over 0.0 s: 3 units in 2 groups (1.5 per group); a unit waited 1.33 ms for its group; " +
            "a group ran its units for 2.00 ms and committed in 0.00 ms; busy 50%; slowest run 2.0 ms, commit 0.0 ms, checkpoint (off the writer) ",
            message);
        Assert.Matches(@"ms; GC paused \d+\.\d ms, \d+ gen2$", message);

        Assert.Equal(0, report.ReportOnce()!.Value.Groups);
        Assert.Equal(2, log.Entries.Count);
    }

    [Fact]
    public async Task TheService_ReportsEveryInterval_AndNeverWhenTheIntervalIsZero()
    {
        var log = new ListLogger<WriterReport>();
        var off = new ListLogger<WriterReport>();
        using var every10s = new WriterReport(_store, _time, Options.Create(new ServerOptions { WriterReportInterval = TimeSpan.FromSeconds(10) }), log);
        using var never = new WriterReport(_store, _time, Options.Create(new ServerOptions()), off);
        await every10s.StartAsync(CancellationToken.None);
        await never.StartAsync(CancellationToken.None);

        for (var report = 1; report <= 2; report++)
        {
            await _store.WriteAsync(s => Task.FromResult(true), CancellationToken.None);
            // The service runs in the background (its timer may not exist yet): the clock moves on
            // until it reports.
            for (var wait = 0; wait < 3000 && log.Entries.Count < report; wait++)
            {
                _time.Advance(TimeSpan.FromSeconds(10));
                await Task.Delay(10);
            }

            Assert.Equal(report, log.Entries.Count);
            Assert.Contains(": 1 units in 1 groups", log.Entries[^1].Message, StringComparison.Ordinal);
        }

        await every10s.StopAsync(CancellationToken.None);
        await never.StopAsync(CancellationToken.None);
        Assert.Empty(off.Entries);
    }
}
