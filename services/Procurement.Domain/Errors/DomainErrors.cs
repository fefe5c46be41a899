namespace Procurement.Domain.Errors;

/// <summary>Factories for the common failures, so messages and reasons stay uniform.</summary>
public static class DomainErrors
{
    private const int QuotedPrefix = 64;

    /// <summary>A value as an error echoes it: whole when short, else its first 64 characters and its length.</summary>
    public static string Quote(string value) =>
        value.Length <= QuotedPrefix ? $"'{value}'" : $"'{value[..QuotedPrefix]}…' ({value.Length.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)} characters)";

    public static ProcurementException Invalid(IReadOnlyList<FieldViolation> violations) =>
        new(ErrorKind.InvalidArgument, ErrorReasons.InvalidField,
            violations.Count == 1
                ? $"{violations[0].Field}: {violations[0].Description}"
                : $"{violations.Count} fields are invalid: " + string.Join("; ", violations.Select(v => $"{v.Field}: {v.Description}")),
            violations);

    public static ProcurementException Invalid(string field, string description) =>
        Invalid([new FieldViolation(field, description)]);

    /// <summary>Throws when <paramref name="violations"/> is not empty.</summary>
    public static void ThrowIfAny(IReadOnlyList<FieldViolation> violations)
    {
        if (violations.Count > 0)
        {
            throw Invalid(violations);
        }
    }

    /// <summary>A missing resource, and equally another tenant's resource: the caller cannot tell them apart.</summary>
    public static ProcurementException NotFound(string resourceType, string id) =>
        new(ErrorKind.NotFound, ErrorReasons.NotFound, $"{resourceType} {Quote(id)} was not found.",
            metadata: new Dictionary<string, string> { ["resource_type"] = resourceType, ["resource_id"] = id });

    public static ProcurementException AlreadyExists(string resourceType, string id) =>
        new(ErrorKind.AlreadyExists, ErrorReasons.AlreadyExists, $"{resourceType} {Quote(id)} already exists.",
            metadata: new Dictionary<string, string> { ["resource_type"] = resourceType, ["resource_id"] = id });

    public static ProcurementException EtagMismatch(string resourceType, string id, string expected, string actual) =>
        new(ErrorKind.Aborted, ErrorReasons.EtagMismatch,
            $"{resourceType} '{id}' has changed: the request's etag '{expected}' is not the current etag '{actual}'. Read it again and retry.",
            metadata: new Dictionary<string, string> { ["resource_type"] = resourceType, ["resource_id"] = id, ["current_etag"] = actual });

    public static ProcurementException InvalidState(string message, string currentState) =>
        new(ErrorKind.FailedPrecondition, ErrorReasons.InvalidState, message,
            metadata: new Dictionary<string, string> { ["state"] = currentState });
}
