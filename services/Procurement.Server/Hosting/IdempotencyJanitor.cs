using Microsoft.Extensions.Options;
using Procurement.Storage;

namespace Procurement.Server.Hosting;

/// <summary>Forgets request ids older than the retention (never less than 24 hours), once an hour.</summary>
public sealed partial class IdempotencyJanitor(IProcurementStore store, TimeProvider time, IOptions<ServerOptions> options, ILogger<IdempotencyJanitor> logger)
    : BackgroundService
{
    private static readonly TimeSpan MinimumRetention = TimeSpan.FromHours(24);

    /// <summary>Request ids forgotten per unit of work; a pass runs as many units as it needs.</summary>
    public const int BatchSize = 10_000;

    /// <summary>One pass at the current time; returns how many request ids were forgotten.</summary>
    public async Task<int> ForgetOnceAsync(CancellationToken cancellationToken)
    {
        var retention = options.Value.IdempotencyRetention < MinimumRetention ? MinimumRetention : options.Value.IdempotencyRetention;
        var cutoff = time.GetUtcNow() - retention;
        var removed = 0;
        int batch;
        do
        {
            batch = await store.WriteAsync(s => s.Idempotency.DeleteOlderThanAsync(cutoff, BatchSize), cancellationToken);
            removed += batch;
        }
        while (batch == BatchSize);

        if (removed > 0)
        {
            Log.Removed(logger, removed, cutoff);
        }

        return removed;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromHours(1), time);
        do
        {
            await ForgetOnceAsync(stoppingToken);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Forgot {Count} request ids older than {Cutoff:O}")]
        public static partial void Removed(ILogger logger, int count, DateTimeOffset cutoff);
    }
}
