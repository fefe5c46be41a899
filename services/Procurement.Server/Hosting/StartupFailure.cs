using System.Net.Sockets;
using Microsoft.Extensions.Options;

namespace Procurement.Server.Hosting;

/// <summary>
/// Why the server could not start, in one line an operator can act on (a port in use, a database
/// that cannot be opened, a bad setting), instead of the host's multi-kilobyte stack trace.
/// </summary>
public static class StartupFailure
{
    public static string Describe(Exception exception)
    {
        if (exception is AggregateException { InnerExceptions.Count: > 1 } all)
        {
            return string.Join(" ", all.InnerExceptions.Select(Describe));
        }

        var e = exception;
        while (e is AggregateException { InnerExceptions.Count: 1 } or System.Reflection.TargetInvocationException && e.InnerException is not null)
        {
            e = e.InnerException!;
        }

        var text = e switch
        {
            OptionsValidationException v => string.Join(" ", v.Failures),
            IOException { InnerException: SocketException or Microsoft.AspNetCore.Connections.AddressInUseException } => e.Message,
            Microsoft.Data.Sqlite.SqliteException s => $"the SQLite database cannot be used: {s.Message}",
            Npgsql.NpgsqlException n => $"PostgreSQL cannot be used: {n.Message}",
            UnauthorizedAccessException or IOException => $"the database or its folder cannot be used: {e.Message}",
            InvalidOperationException => e.Message,
            _ => $"{e.GetType().Name}: {e.Message}",
        };
        return text.ReplaceLineEndings(" ");
    }
}
