using System.Globalization;
using Microsoft.Extensions.Options;
using Procurement.Storage.Sqlite;

namespace Procurement.Server.Hosting;

/// <summary>
/// Refuses, at start-up and all at once, settings the server could not run with: a timer period the
/// runtime rejects would otherwise stop a background service (and with it the host) after start.
/// </summary>
public sealed class ServerOptionsValidator : IValidateOptions<ServerOptions>
{
    /// <summary>The longest period a <see cref="PeriodicTimer"/> takes (2^32 − 2 ms, about 49.7 days).</summary>
    public static readonly TimeSpan MaxTimerPeriod = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    // As an operator types it (49.17:02:47.294); TimeSpan's own format pads the fraction to seven digits.
    private static readonly string MaxTimerPeriodText = MaxTimerPeriod.ToString(@"d\.hh\:mm\:ss\.fff", CultureInfo.InvariantCulture);

    /// <summary>
    /// Ten years: no caller retries a request that late, and an unbounded value would put the janitor's
    /// cut-off (now minus the retention) before the first representable time and stop it.
    /// </summary>
    public static readonly TimeSpan MaxIdempotencyRetention = TimeSpan.FromDays(3650);

    public ValidateOptionsResult Validate(string? name, ServerOptions options)
    {
        List<string> failures = [];
        if (options.SweepInterval <= TimeSpan.Zero || options.SweepInterval > MaxTimerPeriod)
        {
            failures.Add($"Procurement:SweepInterval must be more than zero and at most {MaxTimerPeriodText} (about 49.7 days; e.g. 00:00:01); it is {options.SweepInterval}.");
        }

        if (options.FoldInterval <= TimeSpan.Zero || options.FoldInterval > MaxTimerPeriod)
        {
            failures.Add($"Procurement:FoldInterval must be more than zero and at most {MaxTimerPeriodText} (about 49.7 days; e.g. 00:00:01); it is {options.FoldInterval}.");
        }

        if (options.WriterReportInterval < TimeSpan.Zero || options.WriterReportInterval > MaxTimerPeriod)
        {
            failures.Add($"Procurement:WriterReportInterval must be zero (off) or at most {MaxTimerPeriodText} (about 49.7 days; e.g. 00:00:10); it is {options.WriterReportInterval}.");
        }

        if (options.IdempotencyRetention > MaxIdempotencyRetention)
        {
            failures.Add($"Procurement:IdempotencyRetention must be at most 3650 days (e.g. 7.00:00:00); it is {options.IdempotencyRetention}.");
        }

        if (!SqliteDatabase.IsValidBusyTimeout(options.SqliteBusyTimeout))
        {
            failures.Add($"Procurement:SqliteBusyTimeout must be a whole number of seconds, at least 1 (e.g. 00:00:30); it is {options.SqliteBusyTimeout}.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
